"""Seed 004's rules for the order of a VM's vNICs, their PCI addresses and MACs.

A guest names its NICs (eth0, eth1, …) from their PCI addresses and MACs, so a
VM made from a template or snapshot must see its NICs in the same order as the
source did. Everything here is pure: the service feeds it rows and fresh MACs
from the pool and stores what it returns.

- source **with** PCI addresses: vNICs ordered by PCI address, keeping those
  addresses; fresh MACs (sorted ascending) given in that order;
- **template without** PCI addresses: vNICs ordered by name in natural order
  (`nic2` before `nic10`), MACs given in that order; the domain XML lists them
  so, and libvirt gives PCI slots in XML order at the first boot;
- **snapshot without** PCI addresses: the vNICs get new MACs (in name order too).

A source where only some vNICs carry an address (a vNIC added after the last
boot) is treated as "with": the addressed ones first in PCI order, then the
others in name order without an address, so libvirt gives them the next free
slots after the kept ones.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from typing import Sequence

_PCI = re.compile(r"^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_DIGITS = re.compile(r"(\d+)")


class SourceKind(enum.Enum):
    TEMPLATE = "template"
    SNAPSHOT = "snapshot"


class Rule(enum.Enum):
    """Which branch of seed 004 decided a new VM's vNIC order; shown to the admin."""

    PCI_ORDER = "ordered by PCI address, MACs assigned in that order"
    NAME_ORDER = "no PCI addresses: ordered by vNIC name, MACs assigned in that order"
    SNAPSHOT_NEW_MACS = "snapshot without PCI addresses: new MACs, ordered by vNIC name"


@dataclass(frozen=True)
class SourceNic:
    """A vNIC of a template, snapshot or VM as the ordering rules see it."""

    name: str
    pci_address: str | None = None
    mac: str | None = None


@dataclass(frozen=True)
class PlannedNic:
    """A new VM's vNIC: its source vNIC, its position in the domain XML, its MAC and kept PCI address."""

    source: SourceNic
    position: int
    mac: str
    pci_address: str | None


@dataclass(frozen=True)
class NicPlan:
    rule: Rule
    nics: list[PlannedNic]


@dataclass(frozen=True)
class Mismatch:
    """One way a VM's vNICs differ from its source's order; `position` counts from 0 (eth0)."""

    position: int
    field: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.field} expected {self.expected}, found {self.found}"


def parse_pci(address: str) -> tuple[int, int, int, int]:
    """`dddd:bb:ss.f` (lower-case hex, as libvirt reports it) → sortable numbers; ValueError otherwise."""
    m = _PCI.match(address)
    if not m:
        raise ValueError(f"{address!r} is not a PCI address like 0000:00:03.0")
    return int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))


def mac_value(mac: str) -> int:
    """A MAC as one number, so `0a:…` sorts before `a0:…` whatever the case; ValueError if malformed."""
    norm = mac.lower()
    if not _MAC.match(norm):
        raise ValueError(f"{mac!r} is not a MAC address like 56:6f:00:00:00:01")
    return int(norm.replace(":", ""), 16)


def natural_key(name: str) -> tuple:
    """`nic2` < `nic10`: digit runs compare as numbers, the rest as text."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts if p != "")


def has_pci(nics: Sequence[SourceNic]) -> bool:
    return any(n.pci_address for n in nics)


def ordered(nics: Sequence[SourceNic]) -> list[SourceNic]:
    """The guest's NIC order: addressed vNICs by PCI address, then the rest by natural name."""
    with_pci = sorted((n for n in nics if n.pci_address), key=lambda n: parse_pci(n.pci_address or ""))
    without = sorted((n for n in nics if not n.pci_address), key=lambda n: natural_key(n.name))
    return with_pci + without


def rule_for(kind: SourceKind, nics: Sequence[SourceNic]) -> Rule:
    if has_pci(nics):
        return Rule.PCI_ORDER
    return Rule.NAME_ORDER if kind is SourceKind.TEMPLATE else Rule.SNAPSHOT_NEW_MACS


def plan_new_vm(kind: SourceKind, source: Sequence[SourceNic], fresh_macs: Sequence[str]) -> NicPlan:
    """The vNICs of a VM made from `source`: the i-th lowest fresh MAC goes to the i-th vNIC in guest order."""
    if len(fresh_macs) != len(source):
        raise ValueError(f"{len(source)} vNICs need as many MACs, got {len(fresh_macs)}")
    macs = sorted(fresh_macs, key=mac_value)
    nics = [PlannedNic(n, i, mac, n.pci_address) for i, (n, mac) in enumerate(zip(ordered(source), macs))]
    return NicPlan(rule_for(kind, source), nics)


def restore_macs(snapshot: Sequence[SourceNic], taken: set[str], replacements: Sequence[str]) -> dict[str, str]:
    """Snapshot restore: which snapshot MACs must change (old → new) because someone else holds them now.

    `replacements` are fresh MACs, used ascending in the snapshot's guest order.
    """
    clashing = [n.mac for n in ordered(snapshot) if n.mac and n.mac in taken]
    if len(replacements) < len(clashing):
        raise ValueError(f"{len(clashing)} MACs to replace, only {len(replacements)} given")
    return dict(zip(clashing, sorted(replacements, key=mac_value)))


def check_order(kind: SourceKind, source: Sequence[SourceNic], vm: Sequence[SourceNic],
                vm_positions: Sequence[SourceNic] | None = None) -> list[Mismatch]:
    """Compare a VM's (PCI address, MAC, vNIC name) order with what its source promises.

    `vm` is the VM's vNICs; `vm_positions` (default: `vm`) their domain XML order, used for the
    vNICs that have no PCI address yet. Returns nothing when the guest will name its NICs as the
    source's guest did: same names at the same positions, the source's PCI addresses kept, MACs
    ascending in guest order.
    """
    expected = ordered(source)
    by_name = {n.name: n for n in vm}
    addressed = sorted((n for n in vm if n.pci_address), key=lambda n: parse_pci(n.pci_address or ""))
    rest = [n for n in (vm_positions if vm_positions is not None else vm) if not n.pci_address]
    actual = addressed + rest
    found: list[Mismatch] = []
    if len(actual) != len(expected):
        found.append(Mismatch(-1, "vNIC count", str(len(expected)), str(len(actual))))
    for i, (want, got) in enumerate(zip(expected, actual)):
        if want.name != got.name:
            found.append(Mismatch(i, "vNIC name", want.name, got.name))
        mine = by_name.get(want.name)
        if want.pci_address and mine is not None and mine.pci_address != want.pci_address:
            found.append(Mismatch(i, f"PCI address of {want.name}", want.pci_address, mine.pci_address or "none"))
    macs = [n.mac for n in actual if n.mac]
    for i in range(1, len(macs)):
        if mac_value(macs[i]) <= mac_value(macs[i - 1]):
            found.append(Mismatch(i, "MAC order", f"above {macs[i - 1]}", macs[i]))
    if kind is SourceKind.SNAPSHOT and not has_pci(source):
        kept = sorted({n.mac for n in source if n.mac} & {n.mac for n in vm if n.mac})
        for mac in kept:
            found.append(Mismatch(-1, "MAC", "a new MAC (snapshot without PCI addresses)", mac))
    return found


def with_macs(nics: Sequence[SourceNic], macs: dict[str, str]) -> list[SourceNic]:
    """The vNICs with MACs swapped per `macs` (old → new); others unchanged."""
    return [replace(n, mac=macs.get(n.mac or "", n.mac)) for n in nics]
