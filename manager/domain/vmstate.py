"""Which VMs the record and the hosts disagree on, and the one rule that settles each (pure).

After a manager restart, a lost reply or a host coming back, the record (each VM
up on a host, or down) may disagree with what the hosts run. Each VM gets
exactly one verdict, and nothing is guessed: a case no rule settles safely is
reported (an audit finding), never decided quietly.

What counts as known: only hosts whose agents answered the listing. A VM
recorded on a host that did not answer is UNKNOWN (it may run there), and a VM a
change is working on now is left alone: its claim is live (store/vms.py), or a
migration of it runs (the migration service settles those, vm_migrations).

A claim is live while younger than the claim lifetime *and* younger than this
manager: one manager runs against a database (its monitor and audit are in its
memory), so a claim made before it started was made by a manager that died, and
nobody is working on that VM any more (`claim_window_s`).
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from virtfleet.v1 import vm_pb2

# Domain states that are not a running guest: anything else (running, paused, shutting down, …) holds the VM.
INACTIVE_STATES = frozenset({vm_pb2.VM_STATE_SHUTOFF, vm_pb2.VM_STATE_CRASHED})


def is_running(state: int) -> bool:
    return state not in INACTIVE_STATES


class Rule(str, enum.Enum):
    AGREES = "agrees"                  # the record is what the hosts run
    ADOPT = "adopt"                    # runs on a host, recorded down: record it up there
    ADOPT_MOVED = "adopt-moved"        # recorded up on one host, runs on another only: record it there
    MARK_DOWN = "mark-down"            # recorded up on a host that answered without it, runs nowhere: down
    TWO_HOSTS = "two-hosts"            # runs on two hosts at once: reported, nothing changed
    FOREIGN_HOST = "foreign-host"      # runs only on a host outside its cluster: reported, nothing changed
    UNKNOWN_DOMAIN = "unknown-domain"  # a domain no VM of the record has that name: reported
    NOT_ITS_GUEST = "not-its-guest"    # a domain of the VM's name whose MACs are not the VM's (`same_guest`)
    BUSY = "busy"                      # a start, stop or hot-plug holds a live claim: left to it
    MIGRATING = "migrating"            # a migration runs: the migration service settles it
    UNKNOWN = "unknown"                # its recorded host did not answer: not judged

    @property
    def changes_record(self) -> bool:
        return self in (Rule.ADOPT, Rule.ADOPT_MOVED, Rule.MARK_DOWN)

    @property
    def reported(self) -> bool:
        """Settled by nobody: an audit finding (`vm-state`) until an admin acts."""
        return self in (Rule.TWO_HOSTS, Rule.FOREIGN_HOST, Rule.UNKNOWN_DOMAIN, Rule.NOT_ITS_GUEST)


@dataclass(frozen=True)
class RecordedVm:
    """A VM as the record has it, with what tells whether someone is changing it right now."""

    name: str
    cluster_id: int
    state: str                       # "up" or "down"
    host: str | None                 # where it is recorded up
    claim_age_s: float | None        # seconds since a runtime change claimed it; None: no claim
    migrating: bool = False          # a vm_migrations row of it is 'running'


@dataclass(frozen=True)
class HostDomains:
    """What one host's agent answered: its running domains' names (shut-off ones do not count)."""

    host: str
    cluster_id: int
    running: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    vm: str                          # the VM, or the domain's name for UNKNOWN_DOMAIN
    rule: Rule
    host: str = ""                   # ADOPT*: where to record it; MARK_DOWN: where it was recorded; reports: where
    recorded_host: str = ""          # where the record had it up ("" when down)
    running_on: tuple[str, ...] = ()  # every answering host that runs it, sorted

    @property
    def reason(self) -> str:
        """In words, for the log line, the event and the finding."""
        where = " and ".join(self.running_on) or "no host"
        recorded = f"up on {self.recorded_host}" if self.recorded_host else "down"
        return {
            Rule.AGREES: f"recorded {recorded}, runs on {where}",
            Rule.ADOPT: f"runs on {self.host} while recorded down, and no change of it is under way",
            Rule.ADOPT_MOVED: f"recorded up on {self.recorded_host} but runs on {self.host} only, no migration running",
            Rule.MARK_DOWN: f"recorded up on {self.host}, whose agent runs no such domain; it runs on no host",
            Rule.TWO_HOSTS: f"runs on {where} at once (recorded {recorded})",
            Rule.FOREIGN_HOST: f"runs on {where}, outside its cluster (recorded {recorded})",
            Rule.UNKNOWN_DOMAIN: f"domain {self.vm} runs on {where}; no VM has that name",
            Rule.NOT_ITS_GUEST: f"a domain named {self.vm} runs on {self.host}, with other MACs than the VM's",
            Rule.BUSY: "a start, stop or hot-plug of it is under way",
            Rule.MIGRATING: "a migration of it is running",
            Rule.UNKNOWN: f"its host {self.recorded_host} did not answer",
        }[self.rule]


def claim_window_s(claim_lifetime_s: float, manager_uptime_s: float) -> float:
    """How young a claim must be to be live: within its lifetime, and made by this manager (see the docstring)."""
    return max(0.0, min(claim_lifetime_s, manager_uptime_s))


def decide(records: Iterable[RecordedVm], answered: Sequence[HostDomains], *,
           live_claim_s: float) -> list[Verdict]:
    """One verdict per VM of `records`, and one per running domain that no record names (sorted by name).

    `answered`: the hosts whose agents answered; `live_claim_s`: `claim_window_s(...)`.
    """
    by_vm: dict[str, list[str]] = {}
    for h in answered:
        for name in h.running:
            by_vm.setdefault(name, []).append(h.host)
    clusters = {h.host: h.cluster_id for h in answered}
    verdicts = []
    known = set()
    for r in records:
        known.add(r.name)
        verdicts.append(_judge(r, tuple(sorted(by_vm.get(r.name, ()))), clusters, live_claim_s))
    for name in sorted(set(by_vm) - known):
        hosts = tuple(sorted(by_vm[name]))
        verdicts.append(Verdict(name, Rule.UNKNOWN_DOMAIN, hosts[0], running_on=hosts))
    return sorted(verdicts, key=lambda v: (v.vm, v.rule.value))


def _judge(r: RecordedVm, running_on: tuple[str, ...], clusters: Mapping[str, int], live_claim_s: float) -> Verdict:
    recorded = r.host if r.state == "up" and r.host else ""

    def verdict(rule: Rule, host: str = "") -> Verdict:
        return Verdict(r.name, rule, host, recorded, running_on)

    if r.migrating:
        return verdict(Rule.MIGRATING)
    if r.claim_age_s is not None and r.claim_age_s < live_claim_s:
        return verdict(Rule.BUSY)
    if len(running_on) > 1:
        return verdict(Rule.TWO_HOSTS, running_on[0])
    if recorded and recorded not in clusters:
        return verdict(Rule.UNKNOWN)
    if not running_on:
        return verdict(Rule.MARK_DOWN, recorded) if recorded else verdict(Rule.AGREES)
    (host,) = running_on
    if host == recorded:
        return verdict(Rule.AGREES)
    if clusters[host] != r.cluster_id:
        return verdict(Rule.FOREIGN_HOST, host)
    return verdict(Rule.ADOPT_MOVED if recorded else Rule.ADOPT, host)


def same_guest(recorded_macs: Mapping[str, str], domain_macs: Mapping[str, str]) -> bool:
    """Whether a domain is this VM's guest: each of the VM's vNICs it has carries the recorded MAC.

    A domain of the VM's name made by someone else (another tool, another manager) would not; adopting
    it would record a stranger as the VM. Both sides by vNIC name, MACs canonical (lower case).
    """
    return all(domain_macs.get(nic, mac) == mac for nic, mac in recorded_macs.items()) and bool(
        set(recorded_macs) & set(domain_macs) or not recorded_macs)
