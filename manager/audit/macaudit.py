"""Datacenter-wide MACs: one address used twice, and addresses no pool handed out.

Two sources are looked at: the manager's own records (two vNICs given the same
MAC, which a pool that allows duplicates permits) and what hosts report on
their VM-facing devices (taps and macvtaps), where a hand-made device or a
guest of another tool shows up with a MAC nobody allocated.
"""
from __future__ import annotations

from collections import defaultdict

from virtfleet.macaddr import canonical

from .findings import MAC_DUPLICATE, MAC_FOREIGN, Finding, Severity
from .inputs import FleetInput
from .macs import record_keys
from .vnics import DeviceIndex


def mac_findings(fleet: FleetInput, indexes: dict[str, DeviceIndex]) -> list[Finding]:
    return _recorded_duplicates(fleet) + _device_findings(fleet, indexes)


def _recorded_duplicates(fleet: FleetInput) -> list[Finding]:
    owners: dict[str, list[str]] = defaultdict(list)
    for v in fleet.vnics:
        owners[canonical(v.mac)].append(f"{v.vm}/{v.name}")
    return [
        Finding(MAC_DUPLICATE, Severity.ERROR, "", f"MAC {mac}", "one vNIC",
                f"vNICs {', '.join(sorted(users))}",
                "give all but one of them a new MAC (remove and re-add the vNIC) before they share a segment")
        for mac, users in owners.items() if len(users) > 1
    ]


def _device_findings(fleet: FleetInput, indexes: dict[str, DeviceIndex]) -> list[Finding]:
    seen: dict[int, list[tuple[str, str, str]]] = defaultdict(list)   # guest key → (host, device, mac)
    for name, index in indexes.items():
        for key, device, mac in index.vm_facing:
            seen[key].append((name, device, mac))
    findings = []
    for key, devices in seen.items():
        if len(devices) > 1:
            where = ", ".join(f"{h}:{d}" for h, d, _ in sorted(devices))
            findings.append(Finding(MAC_DUPLICATE, Severity.ERROR, "", f"MAC {devices[0][2]} (as seen on hosts)",
                                    "one device", where, "find the VM that should not carry it and re-plug its vNIC"))
    if fleet.allocated_macs is None:
        return findings
    allocated = {k for mac in fleet.allocated_macs for k in record_keys(mac)}
    for key, devices in seen.items():
        if key in allocated:
            continue
        for host, device, mac in devices:
            findings.append(Finding(MAC_FOREIGN, Severity.WARNING, host, f"MAC {mac} on {device}",
                                    "a MAC allocated from a pool", "not allocated by any pool",
                                    f"find who made {device} (not virtfleet) and remove it, or import the VM"))
    return findings
