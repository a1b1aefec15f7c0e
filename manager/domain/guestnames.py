"""What a guest calls its NICs, matched to the manager's vNICs, and compared with its source's guest.

Seed 004 is about the names a guest gives its NICs (eth0… from PCI and MAC order):
the guest agent reports each interface's name, MAC and addresses, and the MAC is
what ties one to a vNIC (the guest may rename interfaces, never the MAC the
manager gave). A VM made from a template or snapshot should show, vNIC for vNIC,
the names its source VM's guest showed; those are kept on the template or
snapshot when it is made from a VM. Pure: no database, no gRPC.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from virtfleet import macaddr

from .vmorder import Mismatch


@dataclass(frozen=True)
class GuestInterface:
    """One interface as the guest agent reports it."""

    name: str
    mac: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuestNic:
    """A vNIC as its guest knows it: the name it gave, the addresses it holds (ADDR/PREFIX)."""

    name: str
    ips: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class GuestNamed:
    """A vNIC's name with its guest's name for it (None: not known), for the comparisons below."""

    vnic: str
    guest_name: str | None


def _mac_key(mac: str) -> int | None:
    try:
        return macaddr.parse(mac)
    except ValueError:
        return None


def match_by_mac(vnic_macs: Mapping[str, str | None], interfaces: Iterable[GuestInterface]) -> dict[str, GuestNic]:
    """vNIC name → what its guest calls it, for the vNICs (name → MAC) whose MAC a guest interface carries.

    MACs compare in any form (virtfleet.macaddr). An interface without a MAC (lo) or with one
    no vNIC has is left out; so is a vNIC the guest does not show (not yet probed, unplugged).
    When two guest interfaces carry one MAC (a bond, a VLAN on top), the lowest name wins, so
    the answer does not depend on the order the guest listed them in.
    """
    by_mac: dict[int, GuestInterface] = {}
    for iface in sorted(interfaces, key=lambda i: i.name):
        key = _mac_key(iface.mac) if iface.mac else None
        if key is not None and key not in by_mac:
            by_mac[key] = iface
    found: dict[str, GuestNic] = {}
    for vnic, mac in vnic_macs.items():
        iface = by_mac.get(_mac_key(mac)) if mac else None   # type: ignore[arg-type]
        if iface is not None:
            found[vnic] = GuestNic(iface.name, tuple(iface.addresses))
    return found


def guest_name_mismatches(source: Sequence[GuestNamed], vm: Sequence[GuestNamed]) -> list[Mismatch]:
    """The VM's guest names (in the VM's guest order) against its source's guest's, vNIC by vNIC.

    A vNIC is compared by its name: a VM made from a template or snapshot has its source's
    vNIC names, and the question is whether the guest calls `nic2` what the source's guest
    called it. A name not known on either side (the source VM never reported one, the guest
    shows no NIC with that MAC) is not compared; the caller decides whether enough is known.
    `position` is the vNIC's place in the VM's guest order.
    """
    recorded = {n.vnic: n.guest_name for n in source}
    found: list[Mismatch] = []
    for i, n in enumerate(vm):
        want = recorded.get(n.vnic)
        if want and n.guest_name and want != n.guest_name:
            found.append(Mismatch(i, "guest_name", want, n.guest_name))
    return found


def known(named: Sequence[GuestNamed]) -> bool:
    """Whether any guest name is known."""
    return any(n.guest_name for n in named)
