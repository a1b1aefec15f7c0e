"""The one MAC address parser and formatter of virtfleet.

People write `52:54:00:AB:CD:EF`, `52-54-00-ab-cd-ef`, `525400abcdef` or (switch
vendors, and PostgreSQL's macaddr input) `5254.00ab.cdef`; the kernel,
libvirt and PostgreSQL print colon-separated lower case. Everything that reads a MAC
— the CLI's `mac=`, the pool's ranges, the agent's vNIC spec, the audit — goes
through `parse`, and everything stored or compared is `canonical`, so one address
can never be two.
"""
from __future__ import annotations

import functools
import re

from .errors import InvalidArgument, shown

MAC_BITS = 48
MAX_MAC = (1 << MAC_BITS) - 1
# The I/G bit: least significant bit of the first octet; set means a group (multicast) address.
MULTICAST_BIT = 1 << 40

_CANONICAL = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_SEPARATED = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
_BARE = re.compile(r"[0-9a-f]{12}")
_DOTTED = re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}")
EXAMPLE = "02:00:00:00:00:01"


def parse(text: str) -> int:
    """The address as a 48-bit integer; ValueError (with the text) when it is not one."""
    t = text.strip().lower()
    if _SEPARATED.fullmatch(t):
        return int(t.replace(t[2], ""), 16)
    if _BARE.fullmatch(t):
        return int(t, 16)
    if _DOTTED.fullmatch(t):
        return int(t.replace(".", ""), 16)
    raise ValueError(f"{shown(text)} is not a MAC address (six hex octets like {EXAMPLE}, "
                     "separated by ':' or '-', or none, or as 5254.00ab.cdef)")


def format_mac(mac: int) -> str:
    h = f"{mac:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def canonical(text: str) -> str:
    """`52-54-00-AB-CD-EF` → `52:54:00:ab:cd:ef`; ValueError when it is not a MAC."""
    if _CANONICAL.fullmatch(text):
        return text  # what kernels and PostgreSQL print: the common case, a hundred thousand times per audit
    return _canonical(text)


@functools.lru_cache(maxsize=65536)
def _canonical(text: str) -> str:
    return format_mac(parse(text))


def is_multicast(mac: int) -> bool:
    return bool(mac & MULTICAST_BIT)


def parse_field(text: str, field: str) -> int:
    """As `parse`, refusing with the request field named."""
    try:
        return parse(text)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None


def unicast_field(text: str, field: str) -> str:
    """A vNIC's MAC as an admin gives it: canonical, unicast, or refused naming the field."""
    mac = parse_field(text, field)
    if is_multicast(mac):
        raise InvalidArgument(field, f"{format_mac(mac)} is a multicast address (first octet is odd); "
                                     "a vNIC needs a unicast MAC")
    return format_mac(mac)
