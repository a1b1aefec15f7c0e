"""Seed 004's ordering rules, branch by branch (pure)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from manager.domain.vmorder import (Mismatch, Rule, SourceKind, SourceNic, check_order, natural_key, ordered,
                                    plan_new_vm, restore_macs, rule_for)
from manager.domain.vnic import PciAddress
from virtfleet.macaddr import parse as mac_value

parse_pci = PciAddress.parse

MACS = ["56:6f:00:00:00:0a", "56:6f:00:00:00:02", "56:6f:00:00:00:05"]


def names(nics):
    return [n.name for n in nics]


def with_macs(nics, macs: dict[str, str]) -> list[SourceNic]:
    """The vNICs with MACs swapped per `macs` (old → new), as the service stores a restore."""
    return [replace(n, mac=macs.get(n.mac or "", n.mac)) for n in nics]


def test_natural_name_order_puts_nic2_before_nic10():
    assert sorted(["nic10", "nic2", "nic1", "eth0", "nic1a"], key=natural_key) == ["eth0", "nic1", "nic1a", "nic2",
                                                                                    "nic10"]


def test_natural_key_orders_numbers_before_text_at_the_same_place():
    assert sorted(["a", "1", "b2", "b10"], key=natural_key) == ["1", "a", "b2", "b10"]


def test_pci_addresses_sort_numerically_not_as_text():
    assert parse_pci("0000:00:0a.0") > parse_pci("0000:00:09.0")
    assert parse_pci("0000:01:00.0") > parse_pci("0000:00:1f.7")


@pytest.mark.parametrize("bad", ["00:03.0", "0000:00:03", "0000:00:03.8", "0000:00:0G.0", ""])
def test_malformed_pci_address_is_refused(bad):
    with pytest.raises(ValueError):
        parse_pci(bad)


def test_mac_value_ignores_case_and_refuses_garbage():
    assert mac_value("0A:00:00:00:00:01") == mac_value("0a:00:00:00:00:01") < mac_value("a0:00:00:00:00:00")
    with pytest.raises(ValueError):
        mac_value("0a:00:00:00:01")


def test_template_with_pci_orders_by_pci_and_gives_macs_ascending_in_that_order():
    source = [SourceNic("nic1", "0000:00:05.0"), SourceNic("nic2", "0000:00:03.0"), SourceNic("nic10", "0000:00:04.0")]
    plan = plan_new_vm(SourceKind.TEMPLATE, source, MACS)
    assert plan.rule is Rule.PCI_ORDER
    assert [(p.source.name, p.pci_address, p.mac, p.position) for p in plan.nics] == [
        ("nic2", "0000:00:03.0", "56:6f:00:00:00:02", 0),
        ("nic10", "0000:00:04.0", "56:6f:00:00:00:05", 1),
        ("nic1", "0000:00:05.0", "56:6f:00:00:00:0a", 2),
    ]


def test_template_without_pci_orders_by_natural_name():
    source = [SourceNic("nic10"), SourceNic("nic2"), SourceNic("nic1")]
    plan = plan_new_vm(SourceKind.TEMPLATE, source, MACS)
    assert plan.rule is Rule.NAME_ORDER
    assert [(p.source.name, p.mac, p.pci_address) for p in plan.nics] == [
        ("nic1", "56:6f:00:00:00:02", None), ("nic2", "56:6f:00:00:00:05", None), ("nic10", "56:6f:00:00:00:0a", None)]


def test_snapshot_with_pci_orders_by_pci_with_fresh_macs():
    source = [SourceNic("nic1", "0000:00:04.0", "aa:00:00:00:00:01"), SourceNic("nic2", "0000:00:03.0",
                                                                                "aa:00:00:00:00:02")]
    plan = plan_new_vm(SourceKind.SNAPSHOT, source, MACS[:2])
    assert plan.rule is Rule.PCI_ORDER
    assert [(p.source.name, p.mac) for p in plan.nics] == [("nic2", "56:6f:00:00:00:02"), ("nic1", "56:6f:00:00:00:0a")]


def test_snapshot_without_pci_gets_new_macs_in_name_order():
    source = [SourceNic("nic2", None, "aa:00:00:00:00:01"), SourceNic("nic1", None, "aa:00:00:00:00:02")]
    plan = plan_new_vm(SourceKind.SNAPSHOT, source, MACS[:2])
    assert plan.rule is Rule.SNAPSHOT_NEW_MACS
    assert not {p.mac for p in plan.nics} & {"aa:00:00:00:00:01", "aa:00:00:00:00:02"}
    assert names(p.source for p in plan.nics) == ["nic1", "nic2"]
    assert [p.mac for p in plan.nics] == ["56:6f:00:00:00:02", "56:6f:00:00:00:0a"]


def test_partly_addressed_source_keeps_addressed_first_then_name_order():
    source = [SourceNic("nic3"), SourceNic("nic1", "0000:00:04.0"), SourceNic("nic2", "0000:00:03.0"),
              SourceNic("nic0")]
    assert names(ordered(source)) == ["nic2", "nic1", "nic0", "nic3"]
    assert rule_for(SourceKind.TEMPLATE, source) is Rule.PCI_ORDER


def test_plan_needs_exactly_one_mac_per_vnic():
    with pytest.raises(ValueError, match="2 vNICs need as many MACs"):
        plan_new_vm(SourceKind.TEMPLATE, [SourceNic("a"), SourceNic("b")], MACS[:1])


def test_restore_replaces_only_taken_macs_in_guest_order():
    snap = [SourceNic("nic2", "0000:00:04.0", "aa:00:00:00:00:02"), SourceNic("nic1", "0000:00:03.0",
                                                                                 "aa:00:00:00:00:09"),
            SourceNic("nic3", "0000:00:05.0", "aa:00:00:00:00:05")]
    changes = restore_macs(snap, {"aa:00:00:00:00:02", "aa:00:00:00:00:09"}, ["bb:00:00:00:00:02", "bb:00:00:00:00:01"])
    assert changes == {"aa:00:00:00:00:09": "bb:00:00:00:00:01", "aa:00:00:00:00:02": "bb:00:00:00:00:02"}
    assert [n.mac for n in with_macs(snap, changes)] == ["bb:00:00:00:00:02", "bb:00:00:00:00:01", "aa:00:00:00:00:05"]


def test_restore_without_clashes_changes_nothing():
    assert restore_macs([SourceNic("nic1", None, "aa:00:00:00:00:01")], set(), []) == {}


def test_restore_refuses_too_few_replacements():
    with pytest.raises(ValueError):
        restore_macs([SourceNic("nic1", None, "aa:00:00:00:00:01")], {"aa:00:00:00:00:01"}, [])


def _vm_from(kind, source, macs=MACS):
    return [SourceNic(p.source.name, p.pci_address, p.mac) for p in plan_new_vm(kind, source, macs).nics]


def test_check_order_passes_for_a_vm_made_by_the_rules():
    source = [SourceNic("nic1", "0000:00:05.0"), SourceNic("nic2", "0000:00:03.0"), SourceNic("nic10", "0000:00:04.0")]
    assert check_order(SourceKind.TEMPLATE, source, _vm_from(SourceKind.TEMPLATE, source)) == []


def test_check_order_passes_for_name_ordered_vm_once_booted():
    source = [SourceNic("nic10"), SourceNic("nic2"), SourceNic("nic1")]
    vm = _vm_from(SourceKind.TEMPLATE, source)
    booted = [SourceNic(n.name, f"0000:00:0{3 + i}.0", n.mac) for i, n in enumerate(vm)]
    assert check_order(SourceKind.TEMPLATE, source, booted) == []
    assert check_order(SourceKind.TEMPLATE, source, list(reversed(vm)), vm_positions=vm) == []


def test_check_order_reports_changed_pci_address_and_name_position():
    source = [SourceNic("nic1", "0000:00:03.0"), SourceNic("nic2", "0000:00:04.0")]
    vm = [SourceNic("nic1", "0000:00:05.0", "56:6f:00:00:00:01"), SourceNic("nic2", "0000:00:04.0",
                                                                            "56:6f:00:00:00:02")]
    found = check_order(SourceKind.TEMPLATE, source, vm)
    assert Mismatch(0, "vNIC name", "nic1", "nic2") in found
    assert Mismatch(0, "PCI address of nic1", "0000:00:03.0", "0000:00:05.0") in found
    assert any(m.field == "MAC order" for m in found)
    assert "position 0: vNIC name expected nic1, found nic2" in [str(m) for m in found]


def test_check_order_reports_descending_macs():
    source = [SourceNic("nic1"), SourceNic("nic2")]
    vm = [SourceNic("nic1", None, "56:6f:00:00:00:09"), SourceNic("nic2", None, "56:6f:00:00:00:01")]
    assert check_order(SourceKind.TEMPLATE, source, vm) == [
        Mismatch(1, "MAC order", "above 56:6f:00:00:00:09", "56:6f:00:00:00:01")]


def test_check_order_reports_missing_or_extra_vnic():
    source = [SourceNic("nic1"), SourceNic("nic2")]
    vm = [SourceNic("nic1", None, "56:6f:00:00:00:01")]
    assert Mismatch(-1, "vNIC count", "2", "1") in check_order(SourceKind.TEMPLATE, source, vm)


def test_check_order_reports_a_vnic_that_lost_its_pci_address():
    source = [SourceNic("nic1", "0000:00:03.0")]
    vm = [SourceNic("nic1", None, "56:6f:00:00:00:01")]
    assert check_order(SourceKind.TEMPLATE, source, vm) == [
        Mismatch(0, "PCI address of nic1", "0000:00:03.0", "none")]


def test_check_order_reports_a_kept_mac_from_a_snapshot_without_pci():
    source = [SourceNic("nic1", None, "aa:00:00:00:00:01")]
    vm = [SourceNic("nic1", None, "aa:00:00:00:00:01")]
    assert check_order(SourceKind.SNAPSHOT, source, vm) == [
        Mismatch(-1, "MAC", "a new MAC (snapshot without PCI addresses)", "aa:00:00:00:00:01")]
    assert check_order(SourceKind.SNAPSHOT, source, [SourceNic("nic1", None, "56:6f:00:00:00:01")]) == []



# -- property: whatever the source, a VM made by the rules passes its own order check -------------

_names = st.lists(st.from_regex(r"[a-z]{1,3}[0-9]{0,3}", fullmatch=True), min_size=1, max_size=8, unique=True)
_slots = st.lists(st.integers(min_value=1, max_value=31), min_size=8, max_size=8, unique=True)
_macs = st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=16, max_size=16, unique=True)


def _mac(value: int) -> str:
    return ":".join(f"{value >> (8 * i) & 0xff:02x}" for i in reversed(range(6)))


@settings(max_examples=200, deadline=None)
@given(names=_names, slots=_slots, macs=_macs, addressed=st.lists(st.booleans(), min_size=8, max_size=8),
       kind=st.sampled_from(list(SourceKind)))
def test_vm_made_by_the_rules_passes_the_order_check(names, slots, macs, addressed, kind):
    n = len(names)
    source = [SourceNic(name, f"0000:00:{slots[i]:02x}.0" if addressed[i] else None,
                        _mac(macs[i]) if kind is SourceKind.SNAPSHOT else None) for i, name in enumerate(names)]
    fresh = [_mac(m) for m in macs[8:8 + n]]
    plan = plan_new_vm(kind, source, fresh)
    vm = [SourceNic(p.source.name, p.pci_address, p.mac) for p in plan.nics]
    assert [mac_value(p.mac) for p in plan.nics] == sorted(mac_value(m) for m in fresh)
    assert [p.position for p in plan.nics] == list(range(n))
    assert {(v.name, v.pci_address) for v in vm} == {(s.name, s.pci_address) for s in source}
    assert [v.name for v in vm] == [s.name for s in ordered(source)]
    assert check_order(kind, source, vm) == []
