"""The scheduler's decisions, pure: each filter, every reason at once, the weights and their tie-breaks."""
from __future__ import annotations

from dataclasses import replace

import pytest

from manager.domain.placement import (EXCLUDED, IN_MAINTENANCE, MEMORY_UNKNOWN, NOT_REPORTED, RUNS_HERE, DirectNeed,
                                      DirectUse, HostFacts, Policy, Purpose, VmNeeds, judge, place, purpose_of)
from virtfleet.errors import InvalidArgument
from virtfleet.v1 import hostnet_pb2, netstate_pb2


def link(name: str, kind: str = "", master: str = "", mtu: int = 1500) -> netstate_pb2.Link:
    return netstate_pb2.Link(name=name, kind=kind, master=master, mtu=mtu, flags=["UP", "LOWER_UP"])


def state(*links: netstate_pb2.Link) -> netstate_pb2.NetworkState:
    return netstate_pb2.NetworkState(links=links)


VMNET = hostnet_pb2.NetworkAttachment(network="vmnet", nic="eth2", mtu=1500, bridged=True,
                                      ipv4=hostnet_pb2.Ipv4Config(method="none"))
# vmnet in sync on eth2; eth1 free for macvtaps; eth3 a port of vmnet2's bridge
GOOD_STATE = state(link("eth1"), link("eth2", master="vmnet"), link("vmnet", kind="bridge"),
                   link("eth3", master="vmnet2"), link("vmnet2", kind="bridge"))


def host(name: str = "host1", **kw) -> HostFacts:
    facts = dict(cluster="Default", status="up", state=GOOD_STATE, attachments={"vmnet": VMNET},
                 memory_total_mib=4096)
    facts.update(kw)
    return HostFacts(name=name, **facts)


def vm(**kw) -> VmNeeds:
    needs = dict(name="web", cluster="Default", memory_mib=1024)
    needs.update(kw)
    return VmNeeds(**needs)


def reasons(needs: VmNeeds, facts: HostFacts, purpose: Purpose = Purpose.START, **kw) -> tuple[str, ...]:
    return judge(needs, facts, purpose, **kw).reasons


def test_an_up_host_that_carries_everything_is_accepted():
    needs = vm(bridged=("vmnet",), direct=(DirectNeed("nic2", "eth1", False),))
    v = judge(needs, host())
    assert v.accepted and v.reasons == () and v.notes == ()
    assert v.free_memory_mib == 4096


def test_every_reason_is_listed_at_once_never_just_the_first():
    needs = vm(memory_mib=8192, bridged=("vmnet", "blue"),
               direct=(DirectNeed("nic2", "eth9", False), DirectNeed("nic3", "eth3", False)))
    facts = host(maintenance="maintenance", status="non-operational",
                 status_reason="required network red is missing")
    got = reasons(needs, facts)
    assert got == (
        IN_MAINTENANCE,
        "host is non-operational: required network red is missing",
        "network blue is not on the host (no bridge blue)",
        "vNIC nic2: host NIC eth9 does not exist on the host",
        "vNIC nic3: host NIC eth3 is a port of vmnet2 (a macvtap needs a NIC that no bridge or bond holds)",
        "not enough memory: the VM needs 8192 MiB, 4096 MiB free of 4096 MiB (100% of 4096 MiB)",
    )


@pytest.mark.parametrize("status, maintenance, expected", [
    ("unreachable", "", ["host is unreachable"]),
    ("enrolled", "", ["host is enrolled"]),
    ("non-operational", "", ["host is non-operational"]),
    ("up", "preparing", ["host is preparing for maintenance (its VMs are being migrated away)"]),
    ("unreachable", "maintenance", [IN_MAINTENANCE, "host is unreachable"]),
])
def test_a_host_not_up_or_taken_out_of_service_is_refused(status, maintenance, expected):
    assert list(reasons(vm(), host(status=status, maintenance=maintenance))) == expected


def test_a_bridged_network_out_of_sync_is_refused_with_what_differs():
    drifted = state(link("eth2", master="vmnet"), link("vmnet", kind="bridge", mtu=1400))
    got = reasons(vm(bridged=("vmnet",)), host(state=drifted))
    assert got == ("network vmnet is out of sync (vmnet mtu: expected 1500, found 1400)",)


def test_a_recorded_network_whose_bridge_is_gone_is_missing():
    gone = state(link("eth2"))
    got = reasons(vm(bridged=("vmnet",)), host(state=gone))
    assert got == ("network vmnet is missing (bridge vmnet: expected present, found missing)",)


def test_an_unrecorded_network_counts_when_its_bridge_is_there():
    """No attachment to compare with (a bridge made outside setup-networks): present is all that can be said."""
    assert reasons(vm(bridged=("vmnet2",)), host()) == ()
    assert reasons(vm(bridged=("vmnet3",)), host()) == ("network vmnet3 is not on the host (no bridge vmnet3)",)
    not_a_bridge = state(link("vmnet3"))
    assert reasons(vm(bridged=("vmnet3",)), host(state=not_a_bridge, attachments={})) == (
        "network vmnet3 is not on the host (no bridge vmnet3)",)


def test_a_host_that_never_reported_passes_the_network_filters_with_a_note():
    v = judge(vm(bridged=("vmnet",), direct=(DirectNeed("nic2", "eth1", True),)), host(state=None))
    assert v.accepted and v.notes == (NOT_REPORTED,)
    assert judge(vm(), host(state=None)).notes == ()    # nothing to check: nothing to say


def test_a_passed_through_nic_serves_one_guest():
    taken = host(direct_uses=(DirectUse("db", "eth1", "passthrough"),))
    assert reasons(vm(direct=(DirectNeed("nic2", "eth1", False),)), taken) == (
        "vNIC nic2: host NIC eth1 is passed through to VM db; it serves one guest at a time",)
    shared = host(direct_uses=(DirectUse("db", "eth1", "vepa"), DirectUse("app", "eth1", "bridge")))
    assert reasons(vm(direct=(DirectNeed("nic2", "eth1", True),)), shared) == (
        "vNIC nic2: cannot pass host NIC eth1 through: VM app uses it (bridge)",
        "vNIC nic2: cannot pass host NIC eth1 through: VM db uses it (vepa)",
    )
    assert reasons(vm(direct=(DirectNeed("nic2", "eth1", False),)), shared) == ()


def test_the_vms_own_direct_vnics_do_not_compete_with_it():
    mine = host(direct_uses=(DirectUse("web", "eth1", "passthrough"),))
    assert reasons(vm(direct=(DirectNeed("nic2", "eth1", True),)), mine) == ()


@pytest.mark.parametrize("total, used, needed, percent, fits", [
    (4096, 3072, 1024, 100, True),      # exactly full
    (4096, 3073, 1024, 100, False),
    (4096, 4096, 1024, 125, True),      # overcommitted by a quarter
    (4096, 0, 4097, 100, False),
])
def test_memory_fits_within_the_overcommit_share(total, used, needed, percent, fits):
    v = judge(vm(memory_mib=needed), host(memory_total_mib=total, vms_memory_mib=used),
              policy=Policy(memory_overcommit_percent=percent))
    assert v.accepted is fits
    if not fits:
        assert v.reasons[0].startswith(f"not enough memory: the VM needs {needed} MiB")


def test_unknown_memory_passes_with_a_note():
    v = judge(vm(memory_mib=10**6), host(memory_total_mib=None))
    assert v.accepted and v.notes == (MEMORY_UNKNOWN,) and v.free_memory_mib is None


def test_more_free_memory_wins_then_fewer_vms_then_the_name():
    hosts = [host("a", vms_memory_mib=2048, vm_count=1), host("b", vms_memory_mib=1024, vm_count=5),
             host("c", vms_memory_mib=1024, vm_count=2), host("d", vms_memory_mib=1024, vm_count=2)]
    e = place(vm(), hosts)
    assert [v.host for v in e.verdicts] == ["c", "d", "b", "a"]
    assert e.chosen == "c"
    assert [v.score for v in e.verdicts] == sorted((v.score for v in e.verdicts), reverse=True)


def test_hosts_of_unknown_memory_come_after_those_known_to_fit():
    e = place(vm(), [host("a", memory_total_mib=None), host("b", memory_total_mib=2048, vms_memory_mib=1000)])
    assert [v.host for v in e.verdicts] == ["b", "a"]


def test_with_no_memory_known_anywhere_fewer_vms_decide():
    e = place(vm(), [host("a", memory_total_mib=None, vm_count=3), host("b", memory_total_mib=None, vm_count=1),
                     host("c", memory_total_mib=None, vm_count=1)])
    assert [v.host for v in e.verdicts] == ["b", "c", "a"]


def test_the_same_facts_give_the_same_choice_in_any_order():
    hosts = [host(n, vm_count=i % 2) for i, n in enumerate("edcba")]
    assert place(vm(), hosts).verdicts == place(vm(), list(reversed(hosts))).verdicts


def test_refused_hosts_follow_the_accepted_by_name():
    e = place(vm(), [host("z", status="unreachable"), host("b"), host("a", maintenance="maintenance")])
    assert [(v.host, v.accepted) for v in e.verdicts] == [("b", True), ("a", False), ("z", False)]


def test_migrating_never_chooses_the_host_the_vm_runs_on():
    needs = vm(host="host1")
    assert reasons(needs, host("host1"), Purpose.MIGRATE) == (RUNS_HERE,)
    assert reasons(needs, host("host1"), Purpose.START) == ()
    e = place(needs, [host("host1"), host("host2", vms_memory_mib=3000)], Purpose.MIGRATE)
    assert e.chosen == "host2"


def test_excluded_hosts_are_refused_with_the_reason():
    e = place(vm(), [host("a"), host("b")], exclude=frozenset({"a"}))
    assert e.chosen == "b" and e.verdict("a").reasons == (EXCLUDED,)


def test_a_host_of_another_cluster_is_refused():
    assert reasons(vm(), host(cluster="Other")) == ("host is in cluster Other, not the VM's cluster Default",)


def test_what_a_host_has_not_said_is_noted_not_guessed():
    e = place(vm(filters=("no-mac-spoofing",), virtual_networks=("default",)), [host()])
    assert e.chosen == "host1"
    assert e.verdicts[0].notes == (
        "virtual networks not checked (default): the host's agent has not said which it has",
        "network filters not checked (no-mac-spoofing): the host's agent has not said which it has, or its libvirt "
        "has no nwfilter driver")


def test_a_host_lacking_the_virtual_network_or_the_filter_is_refused_for_each():
    needs = vm(filters=("clean-traffic", "no-mac-spoofing"), virtual_networks=("default", "isolated"))
    lacking = host("a", virtual_networks=frozenset({"default"}), network_filters=frozenset({"no-mac-spoofing"}))
    having = host("b", virtual_networks=frozenset({"default", "isolated", "nat"}),
                  network_filters=frozenset({"clean-traffic", "no-mac-spoofing", "no-ip-spoofing"}))
    e = place(needs, [lacking, having])
    assert e.chosen == "b" and e.verdict("b").notes == ()
    assert e.verdict("a").reasons == ("virtual network isolated is not active in the host's libvirt",
                                      "network filter clean-traffic is not defined in the host's libvirt")


def test_the_refusal_names_every_host_with_all_its_reasons():
    e = place(vm(memory_mib=5000), [host("a", status="unreachable"), host("b", maintenance="maintenance")])
    assert e.chosen == ""
    text = e.refusal()
    assert text.startswith("no host of cluster Default can start VM web: a: host is unreachable, not enough memory")
    assert "b: host is in maintenance, not enough memory" in text
    assert place(vm(), []).refusal() == "cluster Default has no host for VM web"


@pytest.mark.parametrize("text, expected", [("", Purpose.START), ("start", Purpose.START),
                                            ("migrate", Purpose.MIGRATE)])
def test_purpose_of_the_api_text(text, expected):
    assert purpose_of(text) is expected


def test_an_unknown_purpose_names_the_field():
    with pytest.raises(InvalidArgument) as err:
        purpose_of("evacuate")
    assert err.value.field == "purpose"


def test_free_memory_is_what_the_host_has_left_before_this_vm():
    """Free memory reported is before this VM: an admin reads what the host has left now."""
    v = judge(vm(memory_mib=512), replace(host(), vms_memory_mib=1000, vm_count=2))
    assert (v.free_memory_mib, v.vm_count) == (3096, 2)
