"""VM lifecycle on the host's libvirt: define, start, stop, destroy, undefine, list, NIC hot-plug.

Every change validates first (nothing reaches libvirt when a field is wrong), waits
for its VM's turn (`hv.vm_change`: one change per VM at a time, a bounded number per
host, none started for a caller who gave up), runs its check-then-act step under the
hypervisor's lock (the passthrough and VSI-instance checks read the other VMs, then
act), and answers with what libvirt reports afterwards (readback).
A VM's definition holds its host devices: a device passed through to a defined VM
is that VM's until it is undefined or the vNIC detached.
"""
from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Callable

import libvirt

from virtfleet import deadline, rules
from virtfleet.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound

from . import mirror_tc, readback, taplink
from .boot import prepare_vm
from .connection import Hypervisor, translate
from .domxml import ALIAS_PREFIX, build_domain_xml, build_interface_xml, interface_element
from .spec import Qbg, VmSpec, VmState, VmStatus, VNicSpec
from .hostdevs import host_devices
from .nwfilters import check_filters
from .validation import (HostNicUse, check_host_conflicts, complete_nic, missing_host_device, validate_nic,
                         validate_vm)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: VmState.SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF: VmState.SHUTOFF,
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING, libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.SHUTTING_DOWN, libvirt.VIR_DOMAIN_CRASHED: VmState.CRASHED,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.BLOCKED, libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.SUSPENDED,
}
DEFAULT_STOP_TIMEOUT_S = float(rules.DEFAULT_STOP_TIMEOUT_S)
log = logging.getLogger(__name__)


def status(dom: libvirt.virDomain) -> VmStatus:
    try:
        state, _reason = dom.state()
        return VmStatus(runtime=readback.parse_domain(dom.XMLDesc()), state=_STATES.get(state, VmState.SHUTOFF),
                        persistent=bool(dom.isPersistent()))
    except libvirt.libvirtError as err:
        raise translate(err, f"VM {dom.name()!r}") from err


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virDomain:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFound(f"VM {name!r} is not defined on this host") from err
        raise translate(err, f"VM {name!r}") from err


def _other_direct_uses(conn: libvirt.virConnect, vm: str) -> list[HostNicUse]:
    """Direct vNICs of every other VM here, defined or running (both definitions count)."""
    uses: list[HostNicUse] = []
    for dom in conn.listAllDomains():
        if dom.name() == vm:
            continue
        if dom.isPersistent():
            uses += readback.direct_uses(dom.name(), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if dom.isActive():
            uses += readback.direct_uses(dom.name(), dom.XMLDesc())
    return uses


def define_vm(hv: Hypervisor, spec: VmSpec) -> VmStatus:
    validate_vm(spec, hv.limits())
    # Before the VM's turn and the host's lock: the first test guest is built here (~20 s, once).
    spec = prepare_vm(spec, hv.console_dir, hv.guest_cache)
    spec = replace(spec, domain_type=hv.domain_type_for(spec.domain_type, spec.boot.has_os))
    with hv.vm_change(spec.name, "define"), hv.change() as conn:
        check_filters(conn, ((f"spec.nics[{i}]", n) for i, n in enumerate(spec.nics)))
        existing = _find(conn, spec.name)
        kept_ids: dict[str, str] = {}
        if existing is not None:
            if existing.isActive():
                raise FailedPrecondition(f"VM {spec.name!r} is {status(existing).state}; stop it before redefining")
            old = readback.parse_domain(existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            if spec.uuid and spec.uuid != old.uuid:
                raise FailedPrecondition(f"VM {spec.name!r} is already defined with UUID {old.uuid}")
            spec = replace(spec, uuid=old.uuid)
            kept_ids = {n.name: n.vsi_instanceid for n in old.nics if n.vsi_instanceid}
        # A redefined vNIC keeps its VSI instance; only a new one gets a fresh id.
        spec = replace(spec, nics=tuple(_keep_instanceid(n, kept_ids.get(n.name, "")) for n in spec.nics))
        spec = replace(spec, nics=tuple(complete_nic(n) for n in spec.nics))
        check_host_conflicts(spec.name, ((f"spec.nics[{i}]", n) for i, n in enumerate(spec.nics)),
                             _other_direct_uses(conn, spec.name))
        xml = build_domain_xml(spec, hv.default_domain_type())
        try:
            dom = conn.defineXML(xml)
        except libvirt.libvirtError as err:
            raise translate(err, f"defining VM {spec.name!r}") from err
        return status(dom)


def _keep_instanceid(nic: VNicSpec, old_id: str) -> VNicSpec:
    if isinstance(nic.virtualport, Qbg) and not nic.virtualport.instanceid and old_id:
        return replace(nic, virtualport=replace(nic.virtualport, instanceid=old_id))
    return nic


def _find(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    try:
        return _lookup(conn, name)
    except NotFound:
        return None


def start_vm(hv: Hypervisor, name: str, paused: bool = False) -> VmStatus:
    with hv.vm_change(name, "start"), hv.change() as conn:
        dom = _lookup(conn, name)
        if dom.isActive():
            raise FailedPrecondition(f"VM {name!r} is already {status(dom).state}")
        try:
            _create(dom, paused)
        except libvirt.libvirtError as err:
            raise _explain(dom, err, f"starting VM {name!r}") from err
        _host_side_or_destroy(conn, dom)
        return status(dom)


def _host_side_or_destroy(conn: libvirt.virConnect, dom: libvirt.virDomain) -> None:
    """A started VM's vNICs as the host should see them: mirroring vNICs get their bridge's traffic, the taps
    of vNICs whose link is down are down. A VM that cannot have that does not run."""
    try:
        live = dom.XMLDesc()
        if mirror_tc.wishes_of(dom.name(), live):   # only then do bridges change: a plain start reads no other VM
            mirror_tc.sync(conn)
        taplink.apply_domain(conn, live)
    except Exception:
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass
        mirror_tc.sync_quietly(conn)
        raise


def _explain(dom: libvirt.virDomain, err: libvirt.libvirtError, what: str, extra: VNicSpec | None = None) -> Exception:
    """A vNIC whose bridge or host NIC is missing is named; any other refusal is libvirt's own."""
    generic = translate(err, what)
    if not isinstance(generic, FailedPrecondition):
        return generic  # not found, unsupported, libvirt gone: nothing a vNIC's device explains
    try:
        if extra is None:
            nics = readback.parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).nics
            pairs = [(f"nics[{i}]", n) for i, n in enumerate(nics)]
        else:
            pairs = [("nic", readback.parse_interface(interface_element(extra)))]
        problem = missing_host_device(pairs, *host_devices())
    except (libvirt.libvirtError, OSError):
        problem = None
    return FailedPrecondition(f"{what}: {problem}") if problem else generic


def _create(dom: libvirt.virDomain, paused: bool) -> None:
    if not paused:
        dom.create()
        return
    try:
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    except libvirt.libvirtError as err:
        # The test driver refuses the flag; pausing right after the start is the same end state.
        if err.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        dom.create()
        dom.suspend()


def stop_vm(hv: Hypervisor, name: str, timeout_s: float = DEFAULT_STOP_TIMEOUT_S, poll_s: float = 0.1,
            clock: Callable[[], float] = time.monotonic) -> tuple[VmStatus, bool]:
    """Graceful shutdown (ACPI) first; a guest still up after `timeout_s` is destroyed.

    Returns the status afterwards and whether the VM had to be destroyed. The
    wait holds the VM's turn, not the host's lock; if the caller gives up during
    it, the guest has been asked to shut down but is not destroyed.
    """
    with hv.vm_change(name, "stop"):
        with hv.change() as conn:
            dom = _lookup(conn, name)
            if not dom.isActive():
                raise FailedPrecondition(f"VM {name!r} is not running")
            try:
                dom.shutdown()
            except libvirt.libvirtError as err:
                raise translate(err, f"shutting VM {name!r} down") from err
        until = clock() + timeout_s
        while clock() < until:
            if not _active(dom):
                return _status_after_stop(hv, name), False
            if not deadline.waiting():
                raise DeadlineExceeded(f"the caller gave up while VM {name!r} was shutting down; it was asked to "
                                       "shut down, and was not destroyed")
            time.sleep(poll_s)
        with hv.change():
            if _active(dom):
                try:
                    dom.destroy()
                except libvirt.libvirtError as err:
                    if _active(dom):
                        raise translate(err, f"destroying VM {name!r}") from err
                return _status_after_stop(hv, name), True
        return _status_after_stop(hv, name), False


def _active(dom: libvirt.virDomain) -> bool:
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False  # a transient domain vanishes when it stops


def _status_after_stop(hv: Hypervisor, name: str) -> VmStatus:
    mirror_tc.sync_quietly(hv.conn)  # the guest's taps are gone: so are the mirrors to them
    return status(_lookup(hv.conn, name))


def destroy_vm(hv: Hypervisor, name: str) -> VmStatus:
    with hv.vm_change(name, "destroy"), hv.change() as conn:
        dom = _lookup(conn, name)
        if not dom.isActive():
            raise FailedPrecondition(f"VM {name!r} is not running")
        try:
            dom.destroy()
        except libvirt.libvirtError as err:
            raise translate(err, f"destroying VM {name!r}") from err
        mirror_tc.sync_quietly(conn)
        return status(dom)


def undefine_vm(hv: Hypervisor, name: str) -> None:
    with hv.vm_change(name, "undefine"), hv.change() as conn:
        dom = _lookup(conn, name)
        if dom.isActive():
            raise FailedPrecondition(f"VM {name!r} is {status(dom).state}; stop or destroy it first")
        try:
            dom.undefine()
        except libvirt.libvirtError as err:
            raise translate(err, f"undefining VM {name!r}") from err


def list_vms(hv: Hypervisor) -> list[VmStatus]:
    found = []
    for dom in hv.conn.listAllDomains():
        try:
            found.append(status(dom))
        except NotFound:
            continue  # undefined between listing and reading
    return sorted(found, key=lambda s: s.runtime.name)


def get_vm(hv: Hypervisor, name: str) -> VmStatus:
    return status(_lookup(hv.conn, name))


# --- NIC hot-plug ---------------------------------------------------------------------------

def attach_nic(hv: Hypervisor, vm: str, nic: VNicSpec) -> VmStatus:
    """Adds the vNIC to the definition and, when the VM runs, to the guest (hot-plug)."""
    validate_nic(nic, "nic")
    with hv.vm_change(vm, "attach-nic"), hv.change() as conn:
        check_filters(conn, [("nic", nic)])
        dom = _lookup(conn, vm)
        current = [n for text in _definitions(dom) for n in readback.parse_domain(text).nics]
        nic = complete_nic(nic)  # canonical MAC first: libvirt reports the others' canonical
        _check_new_nic_distinct(nic, current)
        check_host_conflicts(vm, [("nic", nic)], _other_direct_uses(conn, vm))
        xml = build_interface_xml(nic)
        active = bool(dom.isActive())
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if active else 0)
        try:
            dom.attachDeviceFlags(xml, flags)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT or active:
                raise _explain(dom, err, f"hot-plugging vNIC {nic.name!r} into VM {vm!r}", extra=nic) from err
            _redefine(conn, dom, lambda devices: devices.append(interface_element(nic)))
        if nic.port_mirroring:
            _mirror_plugged(conn, dom, nic.name, flags)
        if nic.link_down and active:
            taplink.apply_domain(conn, dom.XMLDesc())  # libvirt plugged its tap up
        return status(dom)


def _mirror_plugged(conn: libvirt.virConnect, dom: libvirt.virDomain, nic: str, flags: int) -> None:
    try:
        mirror_tc.set_mirrored(dom, nic, True, flags)
        if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
            mirror_tc.sync(conn)
    except libvirt.libvirtError as err:
        raise FailedPrecondition(f"vNIC {nic!r} was plugged into VM {dom.name()!r}, but its port mirroring could "
                                 f"not be recorded: {err.get_error_message()}") from err


def _definitions(dom: libvirt.virDomain) -> list[str]:
    texts = [dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)]
    if dom.isActive():
        texts.append(dom.XMLDesc())
    return texts


def _check_new_nic_distinct(nic: VNicSpec, current: list) -> None:
    for other in current:
        if other.name and other.name == nic.name:
            raise InvalidArgument("nic.name", f"vNIC {nic.name!r}: the VM already has a vNIC of that name")
        if nic.mac and other.mac == nic.mac:
            raise InvalidArgument("nic.mac", f"vNIC {nic.name!r}: MAC {nic.mac} is already vNIC {other.name!r}'s")
        if nic.pci is not None and other.pci == nic.pci:
            raise InvalidArgument("nic.pci", f"vNIC {nic.name!r}: PCI address {nic.pci} is already taken by "
                                  f"{other.name or other.alias!r}")
        if (isinstance(nic.virtualport, Qbg) and nic.virtualport.instanceid
                and other.vsi_instanceid == nic.virtualport.instanceid.lower()):
            raise InvalidArgument("nic.qbg.instanceid", f"vNIC {nic.name!r}: 802.1Qbg instanceid is already vNIC "
                                  f"{other.name!r}'s")


def detach_nic(hv: Hypervisor, vm: str, nic_name: str) -> VmStatus:
    """Removes the vNIC from the running guest (hot-unplug) and from the definition."""
    with hv.vm_change(vm, "detach-nic"), hv.change() as conn:
        dom = _lookup(conn, vm)
        active = bool(dom.isActive())
        in_config = readback.interface_by_name(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), nic_name) is not None
        live = readback.interface_by_name(dom.XMLDesc(), nic_name) if active else None
        if not in_config and live is None:
            raise NotFound(f"VM {vm!r} has no vNIC {nic_name!r}")
        flags = (libvirt.VIR_DOMAIN_AFFECT_CONFIG if in_config else 0) | (
            libvirt.VIR_DOMAIN_AFFECT_LIVE if live is not None else 0)
        try:
            dom.detachDeviceAlias(ALIAS_PREFIX + nic_name, flags)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT or live is not None:
                raise translate(err, f"unplugging vNIC {nic_name!r} from VM {vm!r}") from err
            _redefine(conn, dom, lambda devices: devices.remove(_by_alias(devices, nic_name)))
        _unmirror(conn, dom, nic_name, flags)
        return status(dom)


def _unmirror(conn: libvirt.virConnect, dom: libvirt.virDomain, nic: str, flags: int) -> None:
    """An unplugged vNIC mirrors no more, even while the guest still holds the device."""
    try:
        mirror_tc.set_mirrored(dom, nic, False, flags)
    except libvirt.libvirtError as err:
        log.warning("vNIC %r of VM %r: could not unmark port mirroring: %s", nic, dom.name(), err)
    mirror_tc.sync_quietly(conn)


def _by_alias(devices: ET.Element, nic_name: str) -> ET.Element:
    for el in devices.findall("interface"):
        alias = el.find("alias")
        if alias is not None and alias.get("name") == ALIAS_PREFIX + nic_name:
            return el
    raise NotFound(f"no vNIC {nic_name!r}")


def _redefine(conn: libvirt.virConnect, dom: libvirt.virDomain, edit: Callable[[ET.Element], None]) -> None:
    """For drivers without device (un)plug on the definition (test:///default): edit and redefine."""
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    edit(root.find("devices"))
    try:
        conn.defineXML(ET.tostring(root, encoding="unicode"))
    except libvirt.libvirtError as err:
        raise translate(err, f"redefining VM {dom.name()!r}") from err

