"""Datacenter-wide MACs: one address used twice, and addresses no pool handed out.

Two sources are looked at: the manager's own records (two vNICs given the same
MAC, which a pool that allows duplicates permits) and what hosts report on
their VM-facing devices (taps and macvtaps), where a hand-made device or a
guest of another tool shows up with a MAC nobody allocated.
"""
from __future__ import annotations

from collections import defaultdict

from .findings import MAC_DUPLICATE, MAC_FOREIGN, Finding, Severity
from .inputs import FleetInput
from .macs import VM_FACING_KINDS, guest_key, normal_mac, record_keys


def mac_findings(fleet: FleetInput) -> list[Finding]:
    return _recorded_duplicates(fleet) + _device_findings(fleet)


def _recorded_duplicates(fleet: FleetInput) -> list[Finding]:
    owners: dict[str, list[str]] = defaultdict(list)
    for v in fleet.vnics:
        owners[normal_mac(v.mac)].append(f"{v.vm}/{v.name}")
    return [
        Finding(MAC_DUPLICATE, Severity.ERROR, "", f"MAC {mac}", "one vNIC",
                f"vNICs {', '.join(sorted(users))}",
                "give all but one of them a new MAC (remove and re-add the vNIC) before they share a segment")
        for mac, users in sorted(owners.items()) if len(users) > 1
    ]


def _device_findings(fleet: FleetInput) -> list[Finding]:
    seen: dict[str, list[tuple[str, str, str]]] = defaultdict(list)   # guest key → (host, device, mac)
    for host in fleet.hosts:
        if host.state is None or not host.reachable:
            continue
        for link in host.state.links:
            if link.kind in VM_FACING_KINDS and link.mac:
                try:
                    seen[guest_key(link.mac, link.kind)].append((host.name, link.name, normal_mac(link.mac)))
                except ValueError:
                    continue
    findings = []
    for key, devices in sorted(seen.items()):
        if len(devices) > 1:
            where = ", ".join(f"{h}:{d}" for h, d, _ in sorted(devices))
            findings.append(Finding(MAC_DUPLICATE, Severity.ERROR, "", f"MAC {devices[0][2]} (as seen on hosts)",
                                    "one device", where, "find the VM that should not carry it and re-plug its vNIC"))
    if fleet.allocated_macs is None:
        return findings
    allocated = {k for mac in fleet.allocated_macs for k in record_keys(mac)}
    for key, devices in sorted(seen.items()):
        if key in allocated:
            continue
        for host, device, mac in sorted(devices):
            findings.append(Finding(MAC_FOREIGN, Severity.WARNING, host, f"MAC {mac} on {device}",
                                    "a MAC allocated from a pool", "not allocated by any pool",
                                    f"find who made {device} (not virtfleet) and remove it, or import the VM"))
    return findings
