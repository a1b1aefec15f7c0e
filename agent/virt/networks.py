"""libvirt virtual networks on this host (seed 003): define, start, destroy, undefine, list."""
from __future__ import annotations

import libvirt

from virtfleet.errors import FailedPrecondition, NotFound

from .connection import Hypervisor, translate
from .netxml import build_network_xml, parse_network_xml
from .spec import VirtualNetworkSpec, VirtualNetworkStatus
from .validation import validate_network


def status(net: libvirt.virNetwork) -> VirtualNetworkStatus:
    try:
        return VirtualNetworkStatus(network=parse_network_xml(net.XMLDesc()), active=bool(net.isActive()),
                                    persistent=bool(net.isPersistent()), autostart=bool(net.autostart()))
    except libvirt.libvirtError as err:
        raise translate(err, f"virtual network {net.name()!r}") from err


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            raise NotFound(f"virtual network {name!r} is not defined on this host") from err
        raise translate(err, f"virtual network {name!r}") from err


def define_network(hv: Hypervisor, spec: VirtualNetworkSpec) -> VirtualNetworkStatus:
    validate_network(spec)
    with hv.change() as conn:
        try:
            existing = _lookup(conn, spec.name)
        except NotFound:
            existing = None
        if existing is not None and existing.isActive():
            raise FailedPrecondition(f"virtual network {spec.name!r} is active; destroy it before redefining")
        try:
            return status(conn.networkDefineXML(build_network_xml(spec)))
        except libvirt.libvirtError as err:
            raise translate(err, f"defining virtual network {spec.name!r}") from err


def start_network(hv: Hypervisor, name: str) -> VirtualNetworkStatus:
    with hv.change() as conn:
        net = _lookup(conn, name)
        if net.isActive():
            raise FailedPrecondition(f"virtual network {name!r} is already active")
        try:
            net.create()
        except libvirt.libvirtError as err:
            raise translate(err, f"starting virtual network {name!r}") from err
        return status(net)


def destroy_network(hv: Hypervisor, name: str) -> VirtualNetworkStatus:
    with hv.change() as conn:
        net = _lookup(conn, name)
        if not net.isActive():
            raise FailedPrecondition(f"virtual network {name!r} is not active")
        try:
            net.destroy()
        except libvirt.libvirtError as err:
            raise translate(err, f"destroying virtual network {name!r}") from err
        return status(net)


def undefine_network(hv: Hypervisor, name: str) -> None:
    with hv.change() as conn:
        net = _lookup(conn, name)
        if net.isActive():
            raise FailedPrecondition(f"virtual network {name!r} is active; destroy it first")
        try:
            net.undefine()
        except libvirt.libvirtError as err:
            raise translate(err, f"undefining virtual network {name!r}") from err


def list_networks(hv: Hypervisor) -> list[VirtualNetworkStatus]:
    found = []
    for net in hv.conn.listAllNetworks():
        try:
            found.append(status(net))
        except NotFound:
            continue
    return sorted(found, key=lambda s: s.network.name)
