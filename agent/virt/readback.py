"""What libvirt actually made of a VM, read from its (live) domain XML; pure functions.

The live XML is the only place that says which tap or macvtap a vNIC got and which
PCI address libvirt chose; the manager stores both (they order vNICs of templates
and snapshots), so they are reported after every start and hot-plug.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .domxml import ALIAS_PREFIX
from .spec import DirectMode, NicKind, PciAddress, VmRuntime, VNicRuntime
from .validation import HostNicUse

_KIB_PER_MIB = 1024
_UNIT_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
             "mb": 1e6 / 1024, "g": 1024**2, "gib": 1024**2, "gb": 1e9 / 1024}


def parse_domain(text: str) -> VmRuntime:
    root = ET.fromstring(text)
    mem = root.find("memory")
    kib = 0.0 if mem is None else float(mem.text or 0) * _UNIT_KIB.get(mem.get("unit", "KiB").lower(), 1)
    return VmRuntime(
        name=root.findtext("name", ""), uuid=root.findtext("uuid", ""), domain_type=root.get("type", ""),
        memory_mib=int(kib // _KIB_PER_MIB), vcpus=int(root.findtext("vcpu", "0")),
        nics=tuple(parse_interface(el) for el in root.findall("devices/interface")),
    )


def parse_interface(el: ET.Element) -> VNicRuntime:
    kind = NicKind.from_interface_type(el.get("type", ""))
    source = el.find("source")
    src, mode = "", None
    if source is not None:
        src = source.get("bridge") or source.get("dev") or source.get("network") or ""
        if kind == NicKind.DIRECT:
            mode = {m.value: m for m in DirectMode}.get(source.get("mode", "vepa"))
    alias = el.find("alias")
    alias_name = "" if alias is None else alias.get("name", "")
    target = el.find("target")
    mac = el.find("mac")
    params = el.find("virtualport[@type='802.1Qbg']/parameters")
    return VNicRuntime(
        name=alias_name.removeprefix(ALIAS_PREFIX) if alias_name.startswith(ALIAS_PREFIX) else "",
        mac="" if mac is None else mac.get("address", "").lower(),
        host_device="" if target is None else target.get("dev", ""),
        pci=_pci(el.find("address[@type='pci']")), alias=alias_name, kind=kind, source=src, mode=mode,
        vsi_instanceid="" if params is None else params.get("instanceid", ""),
    )


def _pci(el: ET.Element | None) -> PciAddress | None:
    if el is None:
        return None
    return PciAddress(*(int(el.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function")))


def interface_by_name(text: str, nic: str) -> ET.Element | None:
    """The <interface> element carrying alias ua-NIC, for unplugging exactly that device."""
    for el in ET.fromstring(text).findall("devices/interface"):
        alias = el.find("alias")
        if alias is not None and alias.get("name") == ALIAS_PREFIX + nic:
            return el
    return None


def direct_uses(vm: str, text: str) -> list[HostNicUse]:
    """The host NICs this domain's direct vNICs sit on (input of the passthrough rule)."""
    return [HostNicUse(vm=vm, device=n.source, mode=n.mode or DirectMode.VEPA, vsi_instanceid=n.vsi_instanceid)
            for n in parse_domain(text).nics if n.kind == NicKind.DIRECT and n.source]
