"""The rules that settle a VM the record and the hosts disagree on: one verdict per VM, never a guess."""
from __future__ import annotations

import pytest

from manager.domain.vmstate import (HostDomains, RecordedVm, Rule, Verdict, claim_window_s, decide, is_running,
                                    same_guest)
from virtfleet.v1 import vm_pb2

LIVE = 600.0   # claims younger than this are live (a manager up for longer than the claim lifetime)


def vm(state: str = "down", host: str | None = None, *, claim_age_s: float | None = None, migrating: bool = False,
       cluster: int = 1, name: str = "web") -> RecordedVm:
    return RecordedVm(name, cluster, state, host, claim_age_s, migrating)


def hosts(**running: str) -> list[HostDomains]:
    """host=“vm1 vm2” (h9 is in cluster 2, the others in cluster 1)."""
    return [HostDomains(h, 2 if h == "h9" else 1, frozenset(names.split())) for h, names in running.items()]


def one(record: RecordedVm, answered: list[HostDomains], live: float = LIVE) -> Verdict:
    (verdict,) = [v for v in decide([record], answered, live_claim_s=live) if v.vm == record.name]
    return verdict


CASES = [
    # (why, record, what answered, rule, host the rule names)
    ("recorded down, runs nowhere", vm(), hosts(h1="", h2=""), Rule.AGREES, ""),
    ("recorded up where it runs", vm("up", "h1"), hosts(h1="web", h2=""), Rule.AGREES, ""),
    ("runs on h2, recorded down, no claim", vm(), hosts(h1="", h2="web"), Rule.ADOPT, "h2"),
    ("runs on h2, recorded down, its claim expired", vm(claim_age_s=900), hosts(h2="web"), Rule.ADOPT, "h2"),
    ("runs, recorded down, a start is under way", vm(claim_age_s=3), hosts(h2="web"), Rule.BUSY, ""),
    ("recorded up on h1 that answered without it", vm("up", "h1"), hosts(h1="", h2=""), Rule.MARK_DOWN, "h1"),
    ("recorded up on h1, a stop is under way", vm("up", "h1", claim_age_s=1), hosts(h1=""), Rule.BUSY, ""),
    ("recorded up on h1, runs on h2 only", vm("up", "h1"), hosts(h1="", h2="web"), Rule.ADOPT_MOVED, "h2"),
    ("runs on two hosts, recorded up on one", vm("up", "h1"), hosts(h1="web", h2="web"), Rule.TWO_HOSTS, "h1"),
    ("runs on two hosts, recorded down", vm(), hosts(h1="web", h2="web"), Rule.TWO_HOSTS, "h1"),
    ("a migration runs: the migration service settles it", vm("up", "h1", migrating=True),
     hosts(h1="web", h2="web"), Rule.MIGRATING, ""),
    ("a migration runs, record disagreeing", vm("up", "h1", migrating=True), hosts(h1="", h2="web"),
     Rule.MIGRATING, ""),
    ("recorded up on h1, which did not answer", vm("up", "h1"), hosts(h2=""), Rule.UNKNOWN, ""),
    ("recorded up on h1, which did not answer, runs on h2", vm("up", "h1"), hosts(h2="web"), Rule.UNKNOWN, ""),
    ("runs only on a host of another cluster", vm(), hosts(h1="", h9="web"), Rule.FOREIGN_HOST, "h9"),
    ("recorded down, no host answered", vm(), [], Rule.AGREES, ""),
]


@pytest.mark.parametrize("why, record, answered, rule, host", CASES, ids=[c[0] for c in CASES])
def test_each_vm_gets_the_one_rule_that_fits(why, record, answered, rule, host):
    verdict = one(record, answered)
    assert (verdict.rule, verdict.host) == (rule, host)
    assert verdict.reason   # every verdict says why, in words


def test_a_running_domain_no_vm_is_named_after_is_reported_on_its_host():
    verdicts = decide([vm()], hosts(h1="", h2="stranger"), live_claim_s=LIVE)
    assert [(v.vm, v.rule, v.host) for v in verdicts] == [("stranger", Rule.UNKNOWN_DOMAIN, "h2"),
                                                          ("web", Rule.AGREES, "")]


def test_two_hosts_names_both_in_its_reason():
    verdict = one(vm("up", "h2"), hosts(h1="web", h2="web"))
    assert verdict.running_on == ("h1", "h2") and "h1 and h2" in verdict.reason


def test_only_the_changing_rules_change_the_record_and_only_the_unsettled_are_reported():
    assert {r for r in Rule if r.changes_record} == {Rule.ADOPT, Rule.ADOPT_MOVED, Rule.MARK_DOWN}
    assert {r for r in Rule if r.reported} == {Rule.TWO_HOSTS, Rule.FOREIGN_HOST, Rule.UNKNOWN_DOMAIN,
                                                Rule.NOT_ITS_GUEST}


def test_a_claim_made_before_this_manager_started_is_not_live():
    window = claim_window_s(600, manager_uptime_s=20)
    assert one(vm(claim_age_s=25), hosts(h1="web"), window).rule is Rule.ADOPT     # its manager died
    assert one(vm(claim_age_s=5), hosts(h1="web"), window).rule is Rule.BUSY       # this manager's own
    assert claim_window_s(600, manager_uptime_s=7200) == 600


def test_paused_and_shutting_down_guests_run_shut_off_and_crashed_do_not():
    assert is_running(vm_pb2.VM_STATE_RUNNING) and is_running(vm_pb2.VM_STATE_PAUSED)
    assert is_running(vm_pb2.VM_STATE_SHUTTING_DOWN)
    assert not is_running(vm_pb2.VM_STATE_SHUTOFF) and not is_running(vm_pb2.VM_STATE_CRASHED)


@pytest.mark.parametrize("recorded, domain, same", [
    ({"nic1": "52:54:00:00:00:01"}, {"nic1": "52:54:00:00:00:01"}, True),
    ({"nic1": "52:54:00:00:00:01", "nic2": "52:54:00:00:00:02"}, {"nic1": "52:54:00:00:00:01"}, True),
    ({"nic1": "52:54:00:00:00:01"}, {"nic1": "52:54:00:00:00:99"}, False),   # another guest of the same name
    ({"nic1": "52:54:00:00:00:01"}, {}, False),                               # a domain with none of its vNICs
    ({}, {}, True),                                                            # a VM without vNICs
])
def test_a_domain_is_the_vms_guest_only_when_its_macs_are_the_recorded_ones(recorded, domain, same):
    assert same_guest(recorded, domain) is same


def test_what_no_rule_settles_is_a_vm_state_finding_and_the_rest_is_not():
    from manager.audit import audit
    from manager.audit.inputs import FleetInput

    verdicts = decide([vm("up", "h2"), vm(name="db"), vm("up", "h1", name="gone")],
                      hosts(h1="web stranger", h2="web", h3="db"), live_claim_s=LIVE)
    found = [(f.category, f.severity.value, f.host, f.object, f.found) for f in audit(FleetInput([], vm_state=verdicts))]
    assert found == [("vm-state", "error", "", "vm web", "running on h1 and h2"),
                     ("vm-state", "warning", "h1", "domain stranger", "running; no VM has that name")]
