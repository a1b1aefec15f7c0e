"""The words iproute2 6.1 uses for kernel numbers (flags, scopes, link types).

The host report promises to read exactly like `ip addr show` on the host, so
these tables copy iproute2's spelling and ordering rather than pyroute2's.
"""

from __future__ import annotations

import functools
import pathlib
import socket

from agent.net.netlink.socket import IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT, IFA_F_SECONDARY, IFF_RUNNING, IFF_UP

# print_link_flags() walks the IFF_* bits in this order; NO-CARRIER comes
# first, leftover bits are printed as hex, M-DOWN is appended by the caller.
LINK_FLAG_ORDER: tuple[tuple[str, int], ...] = (
    ("LOOPBACK", 0x8),
    ("BROADCAST", 0x2),
    ("POINTOPOINT", 0x10),
    ("MULTICAST", 0x1000),
    ("NOARP", 0x80),
    ("ALLMULTI", 0x200),
    ("PROMISC", 0x100),
    ("MASTER", 0x400),
    ("SLAVE", 0x800),
    ("DEBUG", 0x4),
    ("DYNAMIC", 0x8000),
    ("AUTOMEDIA", 0x4000),
    ("PORTSEL", 0x2000),
    ("NOTRAILERS", 0x20),
    ("UP", IFF_UP),
    ("LOWER_UP", 0x10000),
    ("DORMANT", 0x20000),
    ("ECHO", 0x40000),
)

# print_ifa_flags(): table order; "permanent" is shown inverted as "dynamic",
# and IFA_F_SECONDARY reads "temporary" on IPv6.
ADDRESS_FLAG_ORDER: tuple[tuple[str, int], ...] = (
    ("secondary", IFA_F_SECONDARY),
    ("nodad", 0x02),
    ("optimistic", 0x04),
    ("dadfailed", 0x08),
    ("home", 0x10),
    ("deprecated", 0x20),
    ("tentative", 0x40),
    ("permanent", IFA_F_PERMANENT),
    ("mngtmpaddr", 0x100),
    ("noprefixroute", IFA_F_NOPREFIXROUTE),
    ("autojoin", 0x400),
    ("stable-privacy", 0x800),
)

_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

# ll_type_n2a(): the ARPHRD_* values a virtualization host meets.
_LINK_TYPES = {
    1: "ether",
    24: "ieee1394",
    32: "infiniband",
    280: "can",
    512: "ppp",
    768: "ipip",
    769: "tunnel6",
    776: "sit",
    772: "loopback",
    778: "gre",
    803: "ieee802.11/radiotap",
    823: "gre6",
    824: "netlink",
    0xFFFE: "none",
    0xFFFF: "void",
}
_IPV4_ADDRESSED_TYPES = {768, 776, 778}
_IPV6_ADDRESSED_TYPES = {769, 823}

_PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    18: "keepalived",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}


def link_flags(flags: int, lower_down: bool) -> list[str]:
    """Spell IFF_* bits as iproute2 does between < and >."""
    words = []
    if flags & IFF_UP and not flags & IFF_RUNNING:
        words.append("NO-CARRIER")
    flags &= ~IFF_RUNNING
    for name, bit in LINK_FLAG_ORDER:
        if flags & bit:
            words.append(name)
            flags &= ~bit
    if flags:
        words.append(f"{flags:x}")
    if lower_down:
        words.append("M-DOWN")
    return words


def address_flags(flags: int, family: int) -> list[str]:
    """Spell IFA_F_* bits as iproute2 prints them after the scope."""
    words = []
    for name, bit in ADDRESS_FLAG_ORDER:
        if bit == IFA_F_PERMANENT:
            if not flags & bit:
                words.append("dynamic")
        elif flags & bit:
            words.append("temporary" if bit == IFA_F_SECONDARY and family == socket.AF_INET6 else name)
        flags &= ~bit
    if flags:
        words.append(f"flags {flags:02x}")
    return words


def scope_name(scope: int) -> str:
    return _SCOPES.get(scope, str(scope))


def protocol_name(proto: int) -> str:
    return _PROTOCOLS.get(proto, str(proto))


def link_type_name(arphrd: int) -> str:
    return _LINK_TYPES.get(arphrd, f"[{arphrd}]")


def family_name(family: int) -> str:
    return {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}.get(family, str(family))


def hardware_address(colon_hex: str, arphrd: int) -> str:
    """Tunnels carry IP addresses in IFLA_ADDRESS; ip shows those as IPs, not hex."""
    raw = bytes.fromhex(colon_hex.replace(":", "")) if colon_hex else b""
    if len(raw) == 4 and arphrd in _IPV4_ADDRESSED_TYPES:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16 and arphrd in _IPV6_ADDRESSED_TYPES:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return colon_hex


@functools.lru_cache(maxsize=1)
def _group_names() -> dict[int, str]:
    """Device groups are named by the admin in /etc/iproute2/group, as ip reads them."""
    names = {0: "default"}
    try:
        text = pathlib.Path("/etc/iproute2/group").read_text()
    except OSError:
        return names
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0].isdigit():
            names[int(fields[0])] = fields[1]
    return names


def group_name(group: int) -> str:
    return _group_names().get(group, str(group))


def scope_number(name: str) -> int:
    """Inverse of scope_name, for turning a reported route back into a request."""
    for number, word in _SCOPES.items():
        if word == name:
            return number
    return int(name)


def protocol_number(name: str) -> int:
    """Inverse of protocol_name, for turning a reported route back into a request."""
    for number, word in _PROTOCOLS.items():
        if word == name:
            return number
    return int(name)
