"""How a logical network lies on a host, and whether a reported state carries it.

Both sides use this module: the agent builds devices by `layout()`, the manager
judges "in sync" by `compare_attachment()`. Keeping the layout and the
comparison in one place is what makes equivalent forms compare equal — every
value goes through a normaliser (prefix vs netmask, 0 vs 1500 MTU, "1" vs
"active-backup", "0" vs "false", address order) before anything is compared.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from virtfleet.v1 import hostnet_pb2, netstate_pb2

DEFAULT_MTU = 1500

BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")

_FALSE = {"0", "false", "no", "off", ""}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Finding:
    """One difference between what should be and what is, as an admin reads it."""

    field: str
    expected: str
    found: str


@dataclass(frozen=True)
class Layout:
    """Devices that carry one network: `device` is the NIC/bond or its VLAN, `top` holds the addresses."""

    nic: str
    device: str
    bridge: str | None
    vlan: int

    @property
    def top(self) -> str:
        return self.bridge or self.device


def layout(att: hostnet_pb2.NetworkAttachment) -> Layout:
    vlan = int(att.vlan or 0)
    device = f"{att.nic}.{vlan}" if vlan else att.nic
    return Layout(att.nic, device, att.network if att.bridged else None, vlan)


def mtu(value: int | str | None) -> int:
    return int(value or 0) or DEFAULT_MTU


def flag(value: bool | int | str | None) -> bool:
    text = str(value).strip().lower() if value is not None else ""
    if text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise ValueError(f"not a yes/no value: {value!r}")


def bond_mode(value: str | int) -> int:
    """Mode number 0–6 from a number or the kernel's name."""
    text = str(value).strip().lower()
    if text.isdigit() and int(text) < len(BOND_MODES):
        return int(text)
    if text in BOND_MODES:
        return BOND_MODES.index(text)
    raise ValueError(f"unknown bond mode {value!r} (0-6 or {', '.join(BOND_MODES)})")


def prefixlen(value: int | str) -> int:
    """A prefix length from a length or a dotted netmask."""
    text = str(value).strip()
    if text.isdigit():
        n = int(text)
        if 0 <= n <= 32:
            return n
        raise ValueError(f"prefix length {n} is not 0-32")
    return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen


def ipv4_interface(address: str, prefix: int | str) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface((ipaddress.IPv4Address(address.strip()), prefixlen(prefix)))


def compare_attachment(att: hostnet_pb2.NetworkAttachment, state: netstate_pb2.NetworkState,
                       links: Mapping[str, netstate_pb2.Link] | None = None) -> list[Finding]:
    """Findings for one desired network against a reported state; empty means in sync.

    `links` (the state's links by name) spares rebuilding that index when
    comparing hundreds of networks against one state.
    """
    links = links if links is not None else {link.name: link for link in state.links}
    lay = layout(att)
    findings: list[Finding] = []
    want_mtu = mtu(att.mtu)

    device = links.get(lay.device)
    if device is None:
        return [Finding(f"device {lay.device}", "present", "missing")]
    if lay.vlan and (device.kind != "vlan" or device.vlan_id != lay.vlan):
        findings.append(Finding(f"{lay.device} vlan", str(lay.vlan), f"{device.kind or 'plain'} {device.vlan_id}"))
    if lay.bridge:
        bridge = links.get(lay.bridge)
        if bridge is None or bridge.kind != "bridge":
            findings.append(Finding(f"bridge {lay.bridge}", "present",
                                    "missing" if bridge is None else f"a {bridge.kind or 'plain'} device"))
            return findings
        if device.master != lay.bridge:
            findings.append(Finding(f"{lay.device} master", lay.bridge, device.master or "none"))
        if bridge.mtu != want_mtu:
            findings.append(Finding(f"{lay.bridge} mtu", str(want_mtu), str(bridge.mtu)))
    elif device.master and links.get(device.master, netstate_pb2.Link()).kind == "bridge":
        findings.append(Finding(f"{lay.device} master", "none", device.master))
    if device.mtu < want_mtu or (not lay.bridge and device.mtu != want_mtu):
        findings.append(Finding(f"{lay.device} mtu", str(want_mtu), str(device.mtu)))

    top = links[lay.top]
    if "UP" not in top.flags:
        findings.append(Finding(f"{lay.top} state", "up", "down"))
    findings += _compare_ipv4(att, lay.top, top, state.routes)
    return findings


def _compare_ipv4(att: hostnet_pb2.NetworkAttachment, top_name: str, top: netstate_pb2.Link,
                  routes: list[netstate_pb2.Route]) -> list[Finding]:
    findings = []
    method = (att.ipv4.method or "none").lower()
    if method == "static":
        want = ipv4_interface(att.ipv4.address, att.ipv4.prefixlen)
        have = sorted(str(ipv4_interface(a.address, a.prefixlen)) for a in top.addresses if a.family == "inet")
        if str(want) not in have:
            findings.append(Finding(f"{top_name} ipv4", str(want), ", ".join(have) or "none"))
    if att.default_route and att.ipv4.gateway:
        gateway = str(ipaddress.IPv4Address(att.ipv4.gateway.strip()))
        defaults = [r for r in routes if r.family == "inet" and r.destination == "default"]
        if not any(r.device == top_name and r.gateway == gateway for r in defaults):
            found = ", ".join(f"via {r.gateway} dev {r.device}" for r in defaults) or "none"
            findings.append(Finding("default route", f"via {gateway} dev {top_name}", found))
    return findings


def compare_bond(bond: hostnet_pb2.Bond, state: netstate_pb2.NetworkState) -> list[Finding]:
    """A bond's presence and slaves (the kernel reports mode/options only where bonding exists)."""
    links = {link.name: link for link in state.links}
    link = links.get(bond.name)
    if link is None:
        return [Finding(f"bond {bond.name}", "present", "missing")]
    want = sorted(bond.slaves)
    have = sorted(l.name for l in state.links if l.master == bond.name)
    return [] if want == have else [Finding(f"{bond.name} slaves", ",".join(want), ",".join(have) or "none")]
