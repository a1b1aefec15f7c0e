"""Seed 004's rules for the order of a VM's vNICs, their PCI addresses and MACs.

A guest names its NICs (eth0, eth1, …) from their PCI addresses and MACs, so a
VM made from a template or snapshot must see its NICs in the same order as the
source did. Everything here is pure: the service feeds it vNICs and fresh MACs
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
from dataclasses import dataclass
from typing import Sequence

from virtfleet import macaddr

from .vnic import PciAddress, Vnic

_DIGITS = re.compile(r"(\d+)")


class SourceKind(enum.Enum):
    TEMPLATE = "template"
    SNAPSHOT = "snapshot"


class Rule(enum.Enum):
    """Which branch of seed 004 decided a new VM's vNIC order (stored by name; the CLI words it)."""

    PCI_ORDER = "pci_order"                  # by PCI address, MACs assigned in that order
    NAME_ORDER = "name_order"                # no PCI addresses: by vNIC name, MACs assigned in that order
    SNAPSHOT_NEW_MACS = "snapshot_new_macs"  # snapshot without PCI addresses: new MACs, by vNIC name


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


def natural_key(name: str) -> tuple:
    """`nic2` < `nic10`: digit runs compare as numbers, the rest as text."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts if p != "")


def has_pci(nics: Sequence[SourceNic]) -> bool:
    return any(n.pci_address for n in nics)


def ordered(nics: Sequence[SourceNic]) -> list[SourceNic]:
    """The guest's NIC order: addressed vNICs by PCI address, then the rest by natural name."""
    with_pci = sorted((n for n in nics if n.pci_address), key=lambda n: PciAddress.parse(n.pci_address or ""))
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
    macs = sorted(fresh_macs, key=macaddr.parse)
    nics = [PlannedNic(n, i, mac, n.pci_address) for i, (n, mac) in enumerate(zip(ordered(source), macs))]
    return NicPlan(rule_for(kind, source), nics)


def restore_macs(snapshot: Sequence[SourceNic], taken: set[str], replacements: Sequence[str]) -> dict[str, str]:
    """Snapshot restore: which snapshot MACs must change (old → new) because someone else holds them now.

    `replacements` are fresh MACs, used ascending in the snapshot's guest order.
    """
    clashing = [n.mac for n in ordered(snapshot) if n.mac and n.mac in taken]
    if len(replacements) < len(clashing):
        raise ValueError(f"{len(clashing)} MACs to replace, only {len(replacements)} given")
    return dict(zip(clashing, sorted(replacements, key=macaddr.parse)))


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
    addressed = sorted((n for n in vm if n.pci_address), key=lambda n: PciAddress.parse(n.pci_address or ""))
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
        if macaddr.parse(macs[i]) <= macaddr.parse(macs[i - 1]):
            found.append(Mismatch(i, "MAC order", f"above {macs[i - 1]}", macs[i]))
    if kind is SourceKind.SNAPSHOT and not has_pci(source):
        kept = sorted({n.mac for n in source if n.mac} & {n.mac for n in vm if n.mac})
        for mac in kept:
            found.append(Mismatch(-1, "MAC", "a new MAC (snapshot without PCI addresses)", mac))
    return found


# -- a Vnic as the ordering rules see it ---------------------------------------------------------


def source_nic(v: Vnic) -> SourceNic:
    return SourceNic(v.name, str(v.pci) if v.pci else None, v.mac)


def guest_order(vnics: Sequence[Vnic]) -> list[Vnic]:
    """A VM's vNICs as its guest numbers them: by PCI address, then the unaddressed by domain XML position."""
    addressed = sorted((v for v in vnics if v.pci is not None), key=lambda v: v.pci)  # type: ignore[arg-type, return-value]
    return addressed + sorted((v for v in vnics if v.pci is None), key=lambda v: v.position)


def source_guest_order(vnics: Sequence[Vnic]) -> list[Vnic]:
    """A template's or snapshot's vNICs in the order a VM made from it will have them."""
    by_name = {v.name: v for v in vnics}
    return [by_name[s.name] for s in ordered([source_nic(v) for v in vnics])]
