"""MAC forms: the same address is written many ways, and a tap carries a derived one.

Every form is read by virtfleet.macaddr (the one parser); what is compared is its
canonical text or its 48-bit value. libvirt gives the host side of a guest's tap
(vnetN) the guest's MAC with the first byte replaced by 0xFE (0xFA when the
guest's already starts with 0xFE), so the host never answers for the guest's
address; a macvtap device carries the guest's MAC itself.
"""
from __future__ import annotations

from virtfleet.macaddr import canonical, parse

VM_FACING_KINDS = ("tun", "macvtap")


def tap_mac(guest_mac: str) -> str:
    mac = canonical(guest_mac)
    return ("fa" if mac.startswith("fe") else "fe") + mac[2:]


def device_mac(guest_mac: str, device_kind: str) -> str:
    """The MAC a VM-facing device of this kind carries for a guest MAC."""
    return tap_mac(guest_mac) if device_kind == "tun" else canonical(guest_mac)


_TAP_KEY = 1 << 48          # tags a tap's key: it knows only the low five bytes of the guest MAC
_LOW_FIVE = (1 << 40) - 1


def mac_value(mac: str | int) -> int:
    return mac if isinstance(mac, int) else parse(mac)


def guest_key(mac: str, device_kind: str) -> int:
    """Comparable key of the guest MAC behind a device (a tap hides the first byte, so it is dropped)."""
    value = mac_value(mac)
    return _TAP_KEY | (value & _LOW_FIVE) if device_kind == "tun" else value


def record_keys(guest_mac: str | int) -> tuple[int, int]:
    """The keys a recorded/allocated guest MAC (text, or the integer pools store) matches: as a macvtap, as a tap."""
    value = mac_value(guest_mac)
    return value, _TAP_KEY | (value & _LOW_FIVE)
