"""Checks of logical network definitions and host attachments as users type them (pure)."""
from __future__ import annotations

import ipaddress
import re

from virtfleet.v1 import hostnet_pb2

from .errors import InvalidArgument

_BAD_NAME = re.compile(r"[/:\s]")
IPV4_METHODS = ("none", "static", "dhcp")


def check_device_name(name: str, field: str) -> str:
    """Network names become bridge names: the kernel's IFNAMSIZ rules apply."""
    if not name:
        raise InvalidArgument(field, "a name is required")
    if len(name.encode()) > 15:
        raise InvalidArgument(field, f"{name!r} is longer than 15 bytes (the kernel's limit for device names)")
    if _BAD_NAME.search(name) or name in (".", ".."):
        raise InvalidArgument(field, f"{name!r} may not contain '/', ':' or whitespace")
    return name


def check_vlan(vlan: int, field: str = "vlan") -> int | None:
    if vlan == 0:
        return None
    if not 1 <= vlan <= 4094:
        raise InvalidArgument(field, f"VLAN id {vlan} is outside 1–4094")
    return vlan


def check_mtu(mtu: int, field: str = "mtu") -> int:
    if mtu == 0:
        return 1500
    if not 68 <= mtu <= 65535:
        raise InvalidArgument(field, f"MTU {mtu} is outside 68–65535")
    return mtu


def check_ipv4(cfg: hostnet_pb2.Ipv4Config, field: str) -> hostnet_pb2.Ipv4Config:
    """Returns the canonical form: method filled in, addresses normalised."""
    method = cfg.method or "none"
    if method not in IPV4_METHODS:
        raise InvalidArgument(f"{field}.method", f"{cfg.method!r} is not one of {', '.join(IPV4_METHODS)}")
    out = hostnet_pb2.Ipv4Config(method=method)
    if method == "static":
        try:
            iface = ipaddress.IPv4Interface(f"{cfg.address}/{cfg.prefixlen}")
        except ValueError:
            raise InvalidArgument(f"{field}.address",
                                  f"{cfg.address}/{cfg.prefixlen} is not an IPv4 address with a prefix") from None
        if not 1 <= cfg.prefixlen <= 32:
            raise InvalidArgument(f"{field}.prefixlen", f"prefix length {cfg.prefixlen} is outside 1–32")
        out.address, out.prefixlen = str(iface.ip), cfg.prefixlen
        if cfg.gateway:
            try:
                gw = ipaddress.IPv4Address(cfg.gateway)
            except ValueError:
                raise InvalidArgument(f"{field}.gateway", f"{cfg.gateway!r} is not an IPv4 address") from None
            if gw not in iface.network:
                raise InvalidArgument(f"{field}.gateway", f"{gw} is not inside {iface.network}")
            out.gateway = str(gw)
    elif cfg.address or cfg.prefixlen:
        raise InvalidArgument(f"{field}.address", f"an address makes sense only with method static, not {method}")
    return out
