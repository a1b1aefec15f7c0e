"""Checks of what a user types to name and reach a host (pure)."""
from __future__ import annotations

import ipaddress
import re

from virtfleet.errors import InvalidArgument
from virtfleet.tls import DEFAULT_AGENT_PORT, MANAGER_COMMON_NAME

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def check_host_name(name: str, field: str = "name", what: str = "host") -> str:
    """Also admins' names (`what`): both name certificates of the one CA."""
    if not name:
        raise InvalidArgument(field, f"a {what} name is required")
    if len(name) > 253 or not _HOST_NAME.match(name):
        raise InvalidArgument(field, f"{name!r} is not a valid {what} name (lower-case DNS labels: a-z, 0-9, '-')")
    return name


def check_new_host_name(name: str, admins: frozenset[str] = frozenset(), field: str = "name") -> str:
    """A name the CA may put in a host certificate: never the manager's or an admin's, whose
    certificates are told apart from hosts' by that name."""
    check_host_name(name, field)
    if name == MANAGER_COMMON_NAME:
        raise InvalidArgument(field, f"{name!r} is the manager's own certificate name; choose another host name")
    if name in admins:
        raise InvalidArgument(field, f"{name!r} is the name of an admin identity; choose another host name")
    return name


def check_address(address: str, field: str = "address") -> str:
    """A host's management address: a unicast address a host can have (no wildcard, multicast,
    broadcast or reserved address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidArgument(field, f"{address!r} is not an IPv4 or IPv6 address") from None
    why = _not_unicast(ip)
    if why:
        raise InvalidArgument(field, f"{address} is {why}, not a host's unicast address")
    return str(ip)


def _not_unicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_unspecified:
        return "the unspecified (wildcard) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    if ip.is_reserved:
        return "a reserved address"
    return ""


def endpoint_for(address: str, endpoint: str, field: str = "endpoint") -> str:
    """Default to the production TCP port; accept `unix:///abs/path` for lab agents."""
    if not endpoint:
        host = f"[{address}]" if ":" in address else address
        return f"{host}:{DEFAULT_AGENT_PORT}"
    if endpoint.startswith("unix:///"):
        return endpoint
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(field, f"{endpoint!r} is neither HOST:PORT nor unix:///PATH")
    return endpoint
