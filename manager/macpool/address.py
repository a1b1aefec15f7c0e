"""MAC addresses as 48-bit integers: parsing what people type, formatting what they read."""
from __future__ import annotations

import re

from ..errors import InvalidArgument

MAC_BITS = 48
MAC_SPACE = 1 << MAC_BITS
MAX_MAC = MAC_SPACE - 1
# The I/G bit: least significant bit of the first octet; set means a group (multicast) address.
MULTICAST_BIT = 1 << 40

_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_BARE = re.compile(r"^[0-9a-f]{12}$")


def parse_mac(text: str, field: str) -> int:
    """Accept `aa:bb:cc:dd:ee:ff`, `aa-bb-…` or `aabbccddeeff`, any case; name `field` when refused."""
    t = text.strip().lower()
    if _MAC.match(t):
        return int(t.replace(t[2], ""), 16)
    if _BARE.match(t):
        return int(t, 16)
    raise InvalidArgument(field, f"{text!r} is not a MAC address (expected six hex octets like 02:00:00:00:00:01)")


def parse_unicast_mac(text: str, field: str) -> int:
    mac = parse_mac(text, field)
    if is_multicast(mac):
        raise InvalidArgument(field, f"{format_mac(mac)} is a multicast address (first octet is odd); "
                                     "a vNIC needs a unicast MAC")
    return mac


def format_mac(mac: int) -> str:
    h = f"{mac:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def is_multicast(mac: int) -> bool:
    return bool(mac & MULTICAST_BIT)


def normalise_mac(text: str, field: str) -> str:
    return format_mac(parse_mac(text, field))
