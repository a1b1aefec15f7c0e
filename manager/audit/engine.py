"""One audit over the whole fleet: every category, in a stable order."""
from __future__ import annotations

from collections.abc import Iterable

from .findings import UNREACHABLE, Finding, Severity
from .hostnet import network_findings, unexpected_findings
from .inputs import FleetInput, HostInput
from .macaudit import mac_findings
from .nicorder import nic_order_findings
from .vnics import DeviceIndex, vnic_findings

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1}


def audit(fleet: FleetInput) -> list[Finding]:
    """Findings, errors first, then by host, category and object; empty means all is as it should be."""
    findings: list[Finding] = []
    audited: dict[str, HostInput] = {}
    for host in fleet.hosts:
        if not host.reachable or host.state is None:
            findings.append(_unreachable(host, fleet.unreachable_after_s))
            continue
        audited[host.name] = host
        findings += network_findings(host, host.state)
        findings += unexpected_findings(host, host.state)
    indexes: dict[str, DeviceIndex] = {}
    for vnic in fleet.vnics:
        host = audited.get(vnic.host or "")
        if host is not None and host.state is not None:
            if host.name not in indexes:
                indexes[host.name] = DeviceIndex(host.state)
            findings += vnic_findings(vnic, indexes[host.name])
    findings += mac_findings(fleet)
    for item in fleet.nic_orders:
        findings += nic_order_findings(item)
    return sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.host, f.category, f.object))


def filter_findings(findings: Iterable[Finding], *, host: str = "", category: str = "") -> list[Finding]:
    return [f for f in findings if (not host or f.host == host) and (not category or f.category == category)]


def _unreachable(host: HostInput, limit_s: float) -> Finding:
    found = "never reported" if host.silent_s is None else f"silent for {host.silent_s:.0f} s"
    return Finding(UNREACHABLE, Severity.ERROR, host.name, "agent", f"a report at least every {limit_s:.0f} s",
                   found, f"check the agent on {host.name} (systemctl status virtfleet-agent) and its network")
