"""MAC forms: the same address is written many ways, and a tap carries a derived one.

libvirt gives the host side of a guest's tap (vnetN) the guest's MAC with the
first byte replaced by 0xFE (0xFA when the guest's already starts with 0xFE), so
the host never answers for the guest's address; a macvtap device carries the
guest's MAC itself. Comparisons go through these functions only.
"""
from __future__ import annotations

import re

_HEX = re.compile(r"[0-9a-f]{12}")

VM_FACING_KINDS = ("tun", "macvtap")


def normal_mac(mac: str) -> str:
    """"52-54-00-AB-CD-EF", "5254.00ab.cdef", " 52:54:00:ab:cd:ef" → "52:54:00:ab:cd:ef"."""
    digits = re.sub(r"[^0-9a-f]", "", mac.strip().lower())
    if not _HEX.fullmatch(digits):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def tap_mac(guest_mac: str) -> str:
    mac = normal_mac(guest_mac)
    return ("fa" if mac.startswith("fe") else "fe") + mac[2:]


def device_mac(guest_mac: str, device_kind: str) -> str:
    """The MAC a VM-facing device of this kind carries for a guest MAC."""
    return tap_mac(guest_mac) if device_kind == "tun" else normal_mac(guest_mac)


def guest_key(mac: str, device_kind: str) -> str:
    """Comparable key of the guest MAC behind a device (a tap hides the first byte, so drop it)."""
    mac = normal_mac(mac)
    return mac[3:] if device_kind == "tun" else mac


def record_keys(guest_mac: str) -> tuple[str, str]:
    """The keys a recorded/allocated guest MAC matches: as a macvtap, as a tap."""
    mac = normal_mac(guest_mac)
    return mac, mac[3:]
