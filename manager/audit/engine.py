"""One audit over the whole fleet: every category, in a stable order."""
from __future__ import annotations

from collections.abc import Iterable

from .findings import UNREACHABLE, Finding, Severity
from .guestnics import guest_nic_findings
from .hostnet import network_findings, unexpected_findings
from .inputs import FleetInput, HostInput
from .macaudit import mac_findings
from .nicorder import nic_order_findings
from .vmstate import vm_state_findings
from .vnicprofiles import profile_sync_findings
from .vnics import DeviceIndex, vnic_findings

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1}


def audit(fleet: FleetInput, cache: dict[str, DeviceIndex] | None = None) -> list[Finding]:
    """Findings, errors first, then by host, category and object; empty means all is as it should be.

    `cache` (host name → DeviceIndex), kept by the caller between audits, spares
    re-indexing hosts whose state object has not changed; it is updated here.
    """
    cache = {} if cache is None else cache
    findings: list[Finding] = []
    indexes: dict[str, DeviceIndex] = {}
    for host in fleet.hosts:
        if not host.reachable or host.state is None:
            findings.append(_unreachable(host, fleet.unreachable_after_s))
            continue
        index = cache.get(host.name)
        if index is None or index.state is not host.state:
            index = cache[host.name] = DeviceIndex(host.state)
        indexes[host.name] = index
        desired = (host.address, *(a.SerializeToString(deterministic=True) for a in host.desired))
        host_findings = index.memo.get(desired)
        if host_findings is None:
            host_findings = index.memo[desired] = (network_findings(host, host.state)
                                                   + unexpected_findings(host, host.state))
        findings += host_findings
    for gone in set(cache) - {h.name for h in fleet.hosts}:
        del cache[gone]
    for vnic in fleet.vnics:
        index = indexes.get(vnic.host or "")
        if index is not None:
            findings += vnic_findings(vnic, index)
    findings += mac_findings(fleet, indexes)
    for item in fleet.nic_orders:
        findings += nic_order_findings(item)
    for synced in fleet.profile_sync:
        findings += profile_sync_findings(synced)
    for guest in fleet.guest_nics:
        findings += guest_nic_findings(guest)
    findings += vm_state_findings(fleet.vm_state)
    return sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.host, f.category, f.object))


def filter_findings(findings: Iterable[Finding], *, host: str = "", category: str = "") -> list[Finding]:
    return [f for f in findings if (not host or f.host == host) and (not category or f.category == category)]


def _unreachable(host: HostInput, limit_s: float) -> Finding:
    found = "never reported" if host.silent_s is None else f"silent for {host.silent_s:.0f} s"
    return Finding(UNREACHABLE, Severity.ERROR, host.name, "agent", f"a report at least every {limit_s:.0f} s",
                   found, f"check the agent on {host.name} (systemctl status virtfleet-agent) and its network")
