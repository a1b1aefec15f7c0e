"""Host network drift: desired networks against the reported state, then what nobody asked for.

The comparison of one network is virtfleet.netcompare's (the same the
network service shows as "in sync"), so the audit and `host networks` never
disagree, and equivalent forms (netmask vs prefix, MTU 0 vs 1500) never differ.
"""
from __future__ import annotations

import ipaddress

from virtfleet.hostnet.netcompare import compare_attachment, ipv4_interface, layout
from virtfleet.v1 import hostnet_pb2, netstate_pb2

from .findings import NETWORK, UNEXPECTED, Finding, Severity
from .inputs import HostInput

# Bridges other parties own on a host: libvirt's virtual networks.
FOREIGN_BRIDGE_PREFIXES = ("virbr",)


def network_findings(host: HostInput, state: netstate_pb2.NetworkState) -> list[Finding]:
    findings = []
    for att in host.desired:
        for diff in compare_attachment(att, state):
            missing = diff.found == "missing" or diff.field.endswith("master")
            findings.append(Finding(
                NETWORK, Severity.ERROR if missing else Severity.WARNING, host.name,
                f"network {att.network}: {diff.field}", diff.expected, diff.found,
                "re-apply the host's desired networks: virtfleet audit fix ID (--plan shows the changes first)"))
    return findings


def unexpected_findings(host: HostInput, state: netstate_pb2.NetworkState) -> list[Finding]:
    return _unexpected_bridges(host, state) + _unexpected_addresses(host, state)


def _unexpected_bridges(host: HostInput, state: netstate_pb2.NetworkState) -> list[Finding]:
    wanted = {layout(att).bridge for att in host.desired}
    return [
        Finding(UNEXPECTED, Severity.WARNING, host.name, f"bridge {link.name}", "absent",
                f"bridge with ports {', '.join(link.bridge.ports) or 'none'}",
                f"remove it on the host (ip link del {link.name}) or attach a network of that name")
        for link in state.links
        if link.kind == "bridge" and link.name not in wanted and not link.name.startswith(FOREIGN_BRIDGE_PREFIXES)
    ]


def _unexpected_addresses(host: HostInput, state: netstate_pb2.NetworkState) -> list[Finding]:
    allowed, any_on = _expected_addresses(host.desired)
    findings = []
    for link in state.links:
        if "LOOPBACK" in link.flags or link.name in any_on:
            continue
        for a in link.addresses:
            if a.scope != "global":
                continue
            iface = ipaddress.ip_interface(f"{a.address}/{a.prefixlen}")
            if (link.name, iface) in allowed or str(iface.ip) == host.address:
                continue
            findings.append(Finding(
                UNEXPECTED, Severity.WARNING, host.name, f"address {iface} on {link.name}", "absent", str(iface),
                f"remove it (ip addr del {iface} dev {link.name}) or record it on a network attachment"))
    return findings


def _expected_addresses(desired: list[hostnet_pb2.NetworkAttachment]):
    allowed: set[tuple[str, ipaddress.IPv4Interface]] = set()
    any_on: set[str] = set()
    for att in desired:
        top = layout(att).top
        method = (att.ipv4.method or "none").lower()
        if method == "static":
            allowed.add((top, ipv4_interface(att.ipv4.address, att.ipv4.prefixlen)))
        elif method == "dhcp":
            any_on.add(top)
    return allowed, any_on
