"""UpdateNic: a vNIC's profile settings re-applied, live where libvirt can, in the definition always.

The algorithm, in the nmstate shape:
1. validate the requested vNIC (the same rules as a define) and that its filter exists here;
2. read the device as it runs (live XML) and as it is defined (inactive XML);
3. refuse a change of identity: kind, source, mode, model, MAC, PCI address are the
   device's own — changing them is an unplug and a plug, not an update;
4. decide (pure, `plan_update`): link state, bandwidth and filter change live
   (libvirt's device update: `virsh domif-setlink` does the same; the tap follows the
   link, taplink.py); port mirroring is the agent's tc (mirror_tc); isolation and MTU
   only in the definition, named in `needs_restart` (QEMU's host_mtu and the bridge
   port's flag are fixed at plug time);
5. apply live first, then the definition; if a later step fails, the earlier ones are
   undone, so nothing stays half-applied.

The device XML sent to libvirt is the device's own XML (live or inactive) with only the
profile's elements replaced, so the alias, tap, PCI address and virtualport stay as they are.
"""
from __future__ import annotations

import copy
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from typing import Callable

import libvirt

from virtfleet import failpoints
from virtfleet.errors import InvalidArgument, NotFound

from . import mirror_tc, readback, taplink
from .connection import Hypervisor, translate
from .domxml import bandwidth_element, filterref_element
from .lifecycle import _lookup, status
from .mirroring import mirrored_nics
from .nwfilters import check_filters
from .spec import Bandwidth, BandwidthLimit, DirectMode, FilterRef, NicKind, VmStatus, VNicSpec
from .validation import complete_nic, validate_nic

log = logging.getLogger(__name__)

LIVE_SETTINGS = ("link_down", "bandwidth", "filter", "port_mirroring")
RESTART_SETTINGS = ("isolated", "mtu")


@dataclass(frozen=True)
class NicSettings:
    """A vNIC's profile settings, compared in one normal form (filter parameters sorted, as libvirt prints them)."""

    bandwidth: Bandwidth | None = None
    filter: FilterRef | None = None
    isolated: bool = False
    mtu: int = 0
    link_down: bool = False
    port_mirroring: bool = False


@dataclass(frozen=True)
class UpdatePlan:
    live: tuple[str, ...] = ()            # settings changed in the running guest
    config: tuple[str, ...] = ()          # settings changed in the definition
    needs_restart: tuple[str, ...] = ()   # differ in the running guest, and only a restart changes them


@dataclass(frozen=True)
class UpdateResult:
    vm: VmStatus
    applied_live: bool
    needs_restart: tuple[str, ...]


# --- pure ------------------------------------------------------------------------------------

def settings_of(nic: VNicSpec) -> NicSettings:
    ref = nic.filter
    if ref is not None:
        ref = FilterRef(ref.name, tuple(sorted(ref.parameters)))
    return NicSettings(bandwidth=nic.bandwidth, filter=ref, isolated=nic.isolated, mtu=nic.mtu,
                       link_down=nic.link_down, port_mirroring=nic.port_mirroring)


def parse_settings(iface: ET.Element, mirrored: bool) -> NicSettings:
    """The settings libvirt has for one <interface> (live or defined); `mirrored` comes from our metadata."""
    bw = iface.find("bandwidth")
    bandwidth = None
    if bw is not None:
        bandwidth = Bandwidth(_limit(bw.find("inbound")), _limit(bw.find("outbound")))
        bandwidth = None if bandwidth == Bandwidth() else bandwidth
    ref = iface.find("filterref")
    filter_ref = None
    if ref is not None:
        params = tuple(sorted((p.get("name", ""), p.get("value", "")) for p in ref.findall("parameter")))
        filter_ref = FilterRef(ref.get("filter", ""), params)
    port, mtu, link = iface.find("port"), iface.find("mtu"), iface.find("link")
    return NicSettings(bandwidth=bandwidth, filter=filter_ref,
                       isolated=port is not None and port.get("isolated") == "yes",
                       mtu=int(mtu.get("size", "0")) if mtu is not None else 0,
                       link_down=link is not None and link.get("state") == "down", port_mirroring=mirrored)


def _limit(el: ET.Element | None) -> BandwidthLimit | None:
    if el is None or not el.get("average"):
        return None
    return BandwidthLimit(int(el.get("average", "0")), int(el.get("peak", "0")), int(el.get("burst", "0")))


def differing(a: NicSettings, b: NicSettings) -> tuple[str, ...]:
    return tuple(f.name for f in fields(NicSettings) if getattr(a, f.name) != getattr(b, f.name))


def plan_update(wanted: NicSettings, live: NicSettings | None, config: NicSettings | None) -> UpdatePlan:
    """`live` is None when the VM is not running, `config` when it has no definition (a transient VM)."""
    live_diff = differing(live, wanted) if live is not None else ()
    return UpdatePlan(live=tuple(f for f in live_diff if f in LIVE_SETTINGS),
                      config=differing(config, wanted) if config is not None else (),
                      needs_restart=tuple(f for f in live_diff if f in RESTART_SETTINGS))


def check_identity(nic: VNicSpec, iface: ET.Element) -> None:
    """What makes the device the device may not change through an update (INVALID_ARGUMENT naming it)."""
    have = readback.parse_interface(iface)
    model, source = iface.find("model"), iface.find("source")
    have_model = model.get("type", "") if model is not None else ""
    have_source = have.source
    if have.kind == NicKind.VIRTUAL_NETWORK and source is not None:
        have_source = source.get("network", "")  # the live XML adds the network's bridge beside its name
    checks = (("kind", nic.kind, have.kind), ("source", nic.source, have_source),
              ("mode", nic.mode or DirectMode.VEPA if nic.kind == NicKind.DIRECT else None, have.mode),
              ("model", nic.model, have_model or nic.model),
              ("mac", nic.mac or have.mac, have.mac), ("pci", nic.pci or have.pci, have.pci))
    for field, asked, current in checks:
        if asked != current:
            raise InvalidArgument(f"nic.{field}", f"vNIC {nic.name!r} has {field} {_shown(current)}; an update "
                                  f"changes its profile settings only, not its {field} ({_shown(asked)} asked): "
                                  "unplug it and plug a new one")


def _shown(value: object) -> str:
    return str(value) if value not in (None, "") else "none"


_XML_TAGS = {"bandwidth": ("bandwidth",), "filter": ("filterref",), "isolated": ("port",), "mtu": ("mtu",),
             "link_down": ("link",)}


def with_settings(iface: ET.Element, wanted: NicSettings, changed: tuple[str, ...]) -> ET.Element:
    """A copy of the device's XML with the `changed` settings' elements replaced by `wanted`'s."""
    el = copy.deepcopy(iface)
    for name in changed:
        for tag in _XML_TAGS.get(name, ()):
            for old in el.findall(tag):
                el.remove(old)
        new = _element(name, wanted)
        if new is not None:
            el.append(new)
    return el


def _element(name: str, s: NicSettings) -> ET.Element | None:
    if name == "bandwidth" and s.bandwidth is not None:
        return bandwidth_element(s.bandwidth)  # none: libvirt's update clears the tap's limits
    if name == "filter" and s.filter is not None:
        return filterref_element(s.filter)
    if name == "isolated" and s.isolated:
        return ET.Element("port", isolated="yes")
    if name == "mtu" and s.mtu:
        return ET.Element("mtu", size=str(s.mtu))
    if name == "link_down":
        return ET.Element("link", state="down" if s.link_down else "up")
    return None


# --- against libvirt -------------------------------------------------------------------------

def update_nic(hv: Hypervisor, vm: str, nic: VNicSpec) -> UpdateResult:
    validate_nic(nic, "nic")
    nic = complete_nic(nic)
    with hv.vm_change(vm, "update-nic"), hv.change() as conn:
        check_filters(conn, [("nic", nic)])
        dom = _lookup(conn, vm)
        live_xml = dom.XMLDesc() if dom.isActive() else None
        config_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if dom.isPersistent() else None
        live_el = readback.interface_by_name(live_xml, nic.name) if live_xml else None
        config_el = readback.interface_by_name(config_xml, nic.name) if config_xml else None
        if live_el is None and config_el is None:
            raise NotFound(f"VM {vm!r} has no vNIC {nic.name!r}")
        for el in (live_el, config_el):
            if el is not None:
                check_identity(nic, el)
        wanted = settings_of(nic)
        plan = plan_update(
            wanted,
            parse_settings(live_el, nic.name in mirrored_nics(live_xml)) if live_el is not None else None,
            parse_settings(config_el, nic.name in mirrored_nics(config_xml)) if config_el is not None else None)
        _apply(conn, dom, nic.name, wanted, plan, live_el, config_el)
        return UpdateResult(status(dom), applied_live=live_el is not None and not plan.needs_restart,
                            needs_restart=plan.needs_restart)


def _apply(conn: libvirt.virConnect, dom: libvirt.virDomain, name: str, wanted: NicSettings, plan: UpdatePlan,
           live_el: ET.Element | None, config_el: ET.Element | None) -> None:
    undo: list[Callable[[], None]] = []
    what = f"updating vNIC {name!r} of VM {dom.name()!r}"
    try:
        xml_live = tuple(f for f in plan.live if f != "port_mirroring")
        if xml_live and live_el is not None:
            _device(dom, with_settings(live_el, wanted, xml_live), libvirt.VIR_DOMAIN_AFFECT_LIVE)
            undo.append(lambda: _device(dom, with_settings(live_el, parse_settings(live_el, False), xml_live),
                                        libvirt.VIR_DOMAIN_AFFECT_LIVE))
        tap = live_el.find("target") if live_el is not None else None
        if "link_down" in plan.live and tap is not None and tap.get("dev"):
            taplink.set_up(tap.get("dev", ""), not wanted.link_down)
            undo.append(lambda: taplink.set_up(tap.get("dev", ""), wanted.link_down))
        if "port_mirroring" in plan.live:
            undo.append(lambda: mirror_tc.sync(conn))
            mirror_tc.set_mirrored(dom, name, wanted.port_mirroring, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            undo.append(lambda: mirror_tc.set_mirrored(dom, name, not wanted.port_mirroring,
                                                       libvirt.VIR_DOMAIN_AFFECT_LIVE))
            mirror_tc.sync(conn)
        failpoints.hit("agent.vm.update-nic.live-applied")
        xml_config = tuple(f for f in plan.config if f != "port_mirroring")
        if xml_config and config_el is not None:
            _device(dom, with_settings(config_el, wanted, xml_config), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            undo.append(lambda: _device(dom, config_el, libvirt.VIR_DOMAIN_AFFECT_CONFIG))
        if "port_mirroring" in plan.config:
            mirror_tc.set_mirrored(dom, name, wanted.port_mirroring, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    except libvirt.libvirtError as err:
        _undo(undo, what)
        raise translate(err, what) from err
    except BaseException:
        _undo(undo, what)
        raise


def _device(dom: libvirt.virDomain, iface: ET.Element, flags: int) -> None:
    dom.updateDeviceFlags(ET.tostring(iface, encoding="unicode"), flags)


def _undo(steps: list[Callable[[], None]], what: str) -> None:
    for step in reversed(steps):
        try:
            step()
        except Exception as err:  # the original failure is the one to report; this one is logged
            log.error("%s: undoing a step failed: %s", what, err)
