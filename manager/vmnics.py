"""A vNIC's values as the manager handles them: what admins give (validated, naming the field), the
guest's NIC order, and the agent's view of a vNIC. Pure: no database, no gRPC calls.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from virtfleet.v1 import vm_pb2

from . import vmorder
from .errors import InvalidArgument
from .store.vms import NicRecord
from .vmorder import SourceNic

MAX_BULK = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_NIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_DEVICE = re.compile(r"^[^/:\s]{1,15}$")
DIRECT_MODES = ("vepa", "bridge", "private", "passthrough")
_KIND_TO_AGENT = {"network": vm_pb2.VNIC_KIND_BRIDGE, "virtual": vm_pb2.VNIC_KIND_VIRTUAL_NETWORK,
                  "direct": vm_pb2.VNIC_KIND_DIRECT}
_MODE_TO_AGENT = {"vepa": vm_pb2.DIRECT_MODE_VEPA, "bridge": vm_pb2.DIRECT_MODE_BRIDGE,
                  "private": vm_pb2.DIRECT_MODE_PRIVATE, "passthrough": vm_pb2.DIRECT_MODE_PASSTHROUGH}


# -- checks and conversions ---------------------------------------------------------------


def check_name(name: str, field: str) -> None:
    if not _NAME.match(name or ""):
        raise InvalidArgument(field, f"{name!r}: 1-63 letters, digits, '_', '.', '-', starting with a letter or digit")


def bulk_names(name: str, count: int) -> list[str]:
    check_name(name, "name")
    if not 1 <= count <= MAX_BULK:
        raise InvalidArgument("count", f"between 1 and {MAX_BULK}")
    names = [f"{name}-{i}" for i in range(1, count + 1)]
    check_name(names[-1], "name")
    return names


def check_nic(n: NicRecord, field: str) -> NicRecord:
    """Validate an admin-given vNIC; returns it normalised (kind decided, MAC lower-case)."""
    if not _NIC_NAME.match(n.name or ""):
        raise InvalidArgument(f"{field}.name", f"{n.name!r}: 1-32 letters, digits, '_', '-'")
    targets = [t for t in ("virtual_network", "direct_nic") if getattr(n, t)]
    if len(targets) > 1 or (n.virtual_network and n.network):
        raise InvalidArgument(field, "give one of network, virtual_network, direct_nic")
    kind = "direct" if n.direct_nic else "virtual" if n.virtual_network else "network" if n.network else ""
    if not kind:
        raise InvalidArgument(field, "give one of network, virtual_network, direct_nic")
    if n.direct_nic and not _DEVICE.match(n.direct_nic):
        raise InvalidArgument(f"{field}.direct_nic", f"{n.direct_nic!r} is not a device name")
    mode = n.direct_mode or ("vepa" if kind == "direct" else None)
    if kind != "direct" and (n.direct_mode or n.virtualport):
        raise InvalidArgument(f"{field}.mode", "mode and virtualport are for direct attachments only")
    if mode is not None and mode not in DIRECT_MODES:
        raise InvalidArgument(f"{field}.mode", f"{mode!r}: one of {', '.join(DIRECT_MODES)}")
    mac = None
    if n.mac:
        try:
            vmorder.mac_value(n.mac)
        except ValueError as exc:
            raise InvalidArgument(f"{field}.mac", str(exc)) from None
        mac = n.mac.lower()
    if n.pci_address:
        try:
            vmorder.parse_pci(n.pci_address)
        except ValueError as exc:
            raise InvalidArgument(f"{field}.pci_address", str(exc)) from None
    return replace(n, kind=kind, direct_mode=mode, mac=mac, model=n.model or "virtio")


def check_nics(nics: Sequence[NicRecord], field: str = "nics") -> list[NicRecord]:
    checked = [check_nic(n, f"{field}[{i}]") for i, n in enumerate(nics)]
    seen: dict[str, int] = {}
    pcis: dict[str, int] = {}
    for i, n in enumerate(checked):
        if n.name in seen:
            raise InvalidArgument(f"{field}[{i}].name", f"{n.name!r} is already {field}[{seen[n.name]}]")
        seen[n.name] = i
        if n.pci_address and n.pci_address in pcis:
            raise InvalidArgument(f"{field}[{i}].pci_address", f"{n.pci_address} is already {field}[{pcis[n.pci_address]}]")
        if n.pci_address:
            pcis[n.pci_address] = i
    return checked


def source_nic(n: NicRecord) -> SourceNic:
    return SourceNic(n.name, n.pci_address, n.mac)


def guest_order(nics: Sequence[NicRecord]) -> list[NicRecord]:
    """A VM's vNICs as its guest numbers them: by PCI address, then the unaddressed by domain XML position."""
    addressed = sorted((n for n in nics if n.pci_address), key=lambda n: vmorder.parse_pci(n.pci_address or ""))
    return addressed + sorted((n for n in nics if not n.pci_address), key=lambda n: n.position)


def source_guest_order(nics: Sequence[NicRecord]) -> list[NicRecord]:
    by_name = {n.name: n for n in nics}
    return [by_name[s.name] for s in vmorder.ordered([source_nic(n) for n in nics])]


def pci_text(p: vm_pb2.PciAddress) -> str:
    return f"{p.domain:04x}:{p.bus:02x}:{p.slot:02x}.{p.function:x}"


def pci_message(text: str) -> vm_pb2.PciAddress:
    d, b, s, f = vmorder.parse_pci(text)
    return vm_pb2.PciAddress(domain=d, bus=b, slot=s, function=f)


def agent_nic(n: NicRecord, vlan: int | None) -> vm_pb2.VNic:
    """The host's view of a vNIC: a logical network's vNIC is a tap on the bridge named after it."""
    source = {"network": n.network, "virtual": n.virtual_network, "direct": n.direct_nic}[n.kind] or ""
    nic = vm_pb2.VNic(name=n.name, kind=_KIND_TO_AGENT[n.kind], source=source, model=n.model, mac=n.mac or "",
                      vlan=vlan or 0)
    if n.kind == "direct":
        nic.mode = _MODE_TO_AGENT[n.direct_mode or "vepa"]
    if n.pci_address:
        nic.pci.CopyFrom(pci_message(n.pci_address))
    vp = n.virtualport or {}
    if vp.get("type") == "802.1Qbg":
        nic.qbg.CopyFrom(vm_pb2.Virtualport8021Qbg(managerid=vp.get("managerid", 0), typeid=vp.get("typeid", 0),
                                                   typeidversion=vp.get("typeidversion", 0),
                                                   instanceid=vp.get("instanceid", "")))
    elif vp.get("type") == "802.1Qbh":
        nic.qbh.CopyFrom(vm_pb2.Virtualport8021Qbh(profileid=vp.get("profileid", "")))
    return nic


def runtime_rows(status: vm_pb2.VmStatus) -> list[tuple[str, str | None, str | None]]:
    return [(r.name, pci_text(r.pci) if r.HasField("pci") else None, r.host_device or None)
            for r in status.nics if r.name]
