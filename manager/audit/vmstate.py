"""VMs whose record and hosts disagree in a way no rule settles: `vm-state` findings.

The verdicts come from a reconciliation pass (service/reconcile.py, rules in
domain/vmstate.py), which has already settled what a rule settles (adopted,
marked down); what is left here needs an admin: a guest running twice, a domain
the record does not know, a domain of a VM's name that is not its guest.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..domain.vmstate import Rule, Verdict
from .findings import VM_STATE, Finding, Severity


def vm_state_findings(verdicts: Iterable[Verdict]) -> list[Finding]:
    findings = []
    for v in verdicts:
        recorded = f"up on {v.recorded_host}" if v.recorded_host else "down"
        if v.rule is Rule.TWO_HOSTS:
            findings.append(Finding(
                VM_STATE, Severity.ERROR, "", f"vm {v.vm}", f"running on one host (recorded {recorded})",
                f"running on {' and '.join(v.running_on)}",
                f"destroy the guest on the host it should not run on (virsh destroy {v.vm} there); the record "
                "was left as it is"))
        elif v.rule is Rule.FOREIGN_HOST:
            findings.append(Finding(
                VM_STATE, Severity.ERROR, v.host, f"vm {v.vm}",
                f"running on a host of its cluster (recorded {recorded})",
                f"running on {v.host}, outside its cluster",
                f"stop it there and start it with `virtfleet vm start {v.vm}`"))
        elif v.rule is Rule.NOT_ITS_GUEST:
            findings.append(Finding(
                VM_STATE, Severity.WARNING, v.host, f"vm {v.vm}",
                f"its guest, with its vNICs' MACs (recorded {recorded})",
                "a domain of its name with other MACs",
                f"find who runs domain {v.vm} on {v.host}; remove it, or rename one of them"))
        elif v.rule is Rule.UNKNOWN_DOMAIN:
            findings += [Finding(
                VM_STATE, Severity.WARNING, host, f"domain {v.vm}", "only VMs the manager has",
                "running; no VM has that name",
                f"create a VM of that name to manage it, or remove the domain from {host}") for host in v.running_on]
    return findings
