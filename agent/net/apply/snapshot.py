"""The configuration of a few links, in a form that can be stored and compared.

A transaction promises to put touched links back "exactly as they were". That
promise is about what an admin configured — existence, kind, MAC, MTU,
up/down, master, STP, addresses, routes — not about what the kernel keeps
changing by itself (counters, lifetimes, carrier, IPv6 link-local addresses
and their routes). Comparing un-normalised states was VDSM's "network out of
sync" trap; this module is where the normal form is defined once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from virtfleet.v1 import netstate_pb2

Snapshot = dict[str, dict[str, Any]]

# Flags the kernel sets on its own as DAD runs or links flap.
_VOLATILE_ADDRESS_FLAGS = {"tentative", "dadfailed", "deprecated", "optimistic"}


def take(state: netstate_pb2.NetworkState, names: Iterable[str]) -> Snapshot:
    """Configuration of the named links (and routes through them), JSON-ready."""
    links = {link.name: link for link in state.links}
    return {name: _link(links.get(name), state.routes) for name in sorted(set(names))}


def diff(expected: Snapshot, actual: Snapshot) -> list[str]:
    """One readable line per difference, e.g. `eth0 master: expected '' got 'ovirtmgmt'`."""
    lines = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name, {}), actual.get(name, {})
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                lines.append(f"{name} {key}: expected {want.get(key)!r} got {got.get(key)!r}")
    return lines


def _link(link: netstate_pb2.Link | None, routes: Iterable[netstate_pb2.Route]) -> dict[str, Any]:
    if link is None:
        return {"exists": False}
    return {
        "exists": True,
        "kind": link.kind,
        "mac": link.mac,
        "mtu": link.mtu,
        "up": "UP" in link.flags,
        "master": link.master,
        "stp": link.bridge.stp_enabled if link.kind == "bridge" else None,
        "addresses": [_address(a) for a in link.addresses if a.scope != "link"],
        "routes": sorted(_route(r) for r in routes if r.device == link.name and not _kernel_ipv6(r)),
    }


def _address(address: netstate_pb2.Address) -> str:
    flags = [flag for flag in address.flags if flag not in _VOLATILE_ADDRESS_FLAGS]
    words = [address.family, f"{address.address}/{address.prefixlen}"]
    if address.broadcast:
        words.append(f"brd {address.broadcast}")
    words += [f"scope {address.scope}", *flags]
    if address.label:
        words.append(f"label {address.label}")
    return " ".join(words)


def _route(route: netstate_pb2.Route) -> str:
    words = [route.family, route.destination]
    if route.gateway:
        words.append(f"via {route.gateway}")
    words += [f"proto {route.protocol}", f"scope {route.scope}", f"metric {route.metric}"]
    if route.source:
        words.append(f"src {route.source}")
    return " ".join(words)


def _kernel_ipv6(route: netstate_pb2.Route) -> bool:
    """Link-local and multicast IPv6 routes come and go with the link, not with configuration."""
    return route.family == "inet6" and route.destination.startswith(("fe80:", "ff00:"))
