"""UpdateNic's and port mirroring's decisions, as pure functions: what changes live, what needs a restart,
which tc rules a bridge should carry."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from agent.virt.domxml import build_domain_xml, interface_element
from agent.virt.mirroring import BridgeMirrors, BridgePlan, MirrorWish, plan_bridge, wanted_by_bridge, wishes_of
from agent.virt.nicupdate import (NicSettings, check_identity, parse_settings, plan_update, settings_of,
                                  with_settings)
from agent.virt.spec import (Bandwidth, BandwidthLimit, DirectMode, FilterRef, NicKind, PciAddress, VmSpec,
                             VNicSpec)
from virtfleet.errors import InvalidArgument

PLAIN = VNicSpec("nic1", NicKind.BRIDGE, "br0", mac="52:54:00:00:00:01", pci=PciAddress(0, 0, 3, 0))
PROFILED = VNicSpec("nic1", NicKind.BRIDGE, "br0", mac="52:54:00:00:00:01", pci=PciAddress(0, 0, 3, 0),
                    bandwidth=Bandwidth(BandwidthLimit(100, 200, 10), BandwidthLimit(300)),
                    filter=FilterRef("clean-traffic", (("MAC", "52:54:00:00:00:01"), ("IP", "192.0.2.9"))),
                    isolated=True, mtu=1400, link_down=True, port_mirroring=True)


def live(nic: VNicSpec, tap: str = "vnet3") -> ET.Element:
    """The <interface> as libvirt shows it while running: our XML plus the tap libvirt chose."""
    el = interface_element(nic)
    ET.SubElement(el, "target", dev=tap)
    return el


def test_settings_read_back_from_libvirts_xml_equal_the_requested_ones():
    assert parse_settings(live(PROFILED), mirrored=True) == settings_of(PROFILED)
    assert parse_settings(live(PLAIN), mirrored=False) == settings_of(PLAIN) == NicSettings()


def test_link_up_written_by_libvirt_reads_as_up():
    el = live(PLAIN)
    ET.SubElement(el, "link", state="up")
    assert parse_settings(el, False).link_down is False


def test_running_vm_changes_link_qos_filter_live_and_isolation_mtu_only_in_the_definition():
    now = settings_of(PLAIN)
    plan = plan_update(settings_of(PROFILED), live=now, config=now)
    assert set(plan.live) == {"bandwidth", "filter", "link_down", "port_mirroring"}
    assert set(plan.needs_restart) == {"isolated", "mtu"}
    assert set(plan.config) == set(plan.live) | set(plan.needs_restart)


def test_a_restart_setting_already_in_the_definition_still_needs_the_restart():
    wanted = settings_of(PROFILED)
    plan = plan_update(wanted, live=settings_of(PLAIN), config=wanted)
    assert plan.config == ()
    assert set(plan.needs_restart) == {"isolated", "mtu"}


def test_a_stopped_vm_changes_only_its_definition_and_needs_no_restart():
    plan = plan_update(settings_of(PROFILED), live=None, config=settings_of(PLAIN))
    assert plan.live == () and plan.needs_restart == ()
    assert len(plan.config) == 6


def test_nothing_to_do_when_nothing_differs():
    s = settings_of(PROFILED)
    assert plan_update(s, s, s) == plan_update(s, None, s) == type(plan_update(s, s, s))()


def test_the_update_xml_is_the_devices_own_with_only_the_changed_elements_replaced():
    current = live(PLAIN)
    ET.SubElement(current, "link", state="up")
    new = with_settings(current, settings_of(PROFILED), ("link_down", "bandwidth"))
    assert new.find("link").get("state") == "down" and len(new.findall("link")) == 1
    assert new.find("bandwidth/inbound").get("average") == "100"
    assert new.find("filterref") is None and new.find("mtu") is None  # not asked for
    for tag in ("target", "alias", "address", "mac", "source", "model"):
        assert ET.tostring(new.find(tag)) == ET.tostring(current.find(tag)), tag
    assert current.find("link").get("state") == "up"  # the original is untouched


def test_clearing_qos_and_filter_removes_their_elements():
    new = with_settings(live(PROFILED), settings_of(PLAIN), ("bandwidth", "filter", "link_down"))
    assert new.find("bandwidth") is None and new.find("filterref") is None
    assert new.find("link").get("state") == "up"


@pytest.mark.parametrize("changes, field", [
    ({"source": "br1"}, "source"), ({"kind": NicKind.VIRTUAL_NETWORK}, "kind"), ({"mac": "52:54:00:00:00:02"}, "mac"),
    ({"pci": PciAddress(0, 0, 4, 0)}, "pci"), ({"model": "e1000"}, "model"),
])
def test_an_update_may_not_change_what_the_device_is(changes, field):
    from dataclasses import replace
    with pytest.raises(InvalidArgument) as err:
        check_identity(replace(PROFILED, **changes), live(PLAIN))
    assert err.value.field == f"nic.{field}"


def test_an_update_without_mac_or_pci_means_the_devices_own():
    from dataclasses import replace
    check_identity(replace(PROFILED, mac="", pci=None), live(PLAIN))


def test_direct_mode_is_part_of_the_identity():
    nic = VNicSpec("n", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE)
    check_identity(nic, live(nic, "macvtap0"))
    with pytest.raises(InvalidArgument, match="mode"):
        check_identity(VNicSpec("n", NicKind.DIRECT, "eth1"), live(nic, "macvtap0"))


# --- port mirroring ----------------------------------------------------------------------------

def running_xml(*nics_and_taps: tuple[VNicSpec, str]) -> str:
    root = ET.fromstring(build_domain_xml(VmSpec("vm1", 64, 1, nics=tuple(n for n, _ in nics_and_taps)), "kvm"))
    for iface, (_, tap) in zip(root.findall("devices/interface"), nics_and_taps):
        ET.SubElement(iface, "target", dev=tap)
    return ET.tostring(root, encoding="unicode")


def test_wishes_are_the_running_mirroring_vnics_with_their_taps_and_bridges():
    other = VNicSpec("nic2", NicKind.BRIDGE, "br1")
    assert wishes_of("vm1", running_xml((PROFILED, "vnet7"), (other, "vnet8"))) == [
        MirrorWish("vm1", "nic1", "br0", "vnet7")]
    assert wishes_of("vm1", running_xml((other, "vnet8"))) == []


def test_wanted_taps_per_bridge_skip_a_tap_that_vanished():
    wishes = [MirrorWish("a", "n1", "br0", "vnet1"), MirrorWish("b", "n1", "br0", "vnet2"),
              MirrorWish("c", "n1", "br1", "vnet9")]
    assert wanted_by_bridge(wishes, {"vnet1": 11, "vnet2": 12}) == {"br0": frozenset({11, 12})}


def mirrors(*taps: int, **kw) -> BridgeMirrors:
    return BridgeMirrors("br0", clsact=True, ours=(frozenset(taps), frozenset(taps)), promisc=True, **kw)


def test_first_mirror_adds_clsact_a_filter_per_hook_and_promiscuity():
    assert plan_bridge(BridgeMirrors("br0"), frozenset({11})) == BridgePlan(
        "br0", add_clsact=True, mirror_to=(11,), promisc=True)


def test_a_bridge_already_mirroring_exactly_the_wanted_taps_is_left_alone():
    assert plan_bridge(mirrors(11, 12), frozenset({11, 12})).empty


def test_a_changed_set_of_taps_rebuilds_our_filters_only():
    assert plan_bridge(mirrors(11), frozenset({11, 12})) == BridgePlan("br0", clear_ours=True, mirror_to=(11, 12))


def test_a_filter_left_by_a_vanished_tap_is_stale_and_goes():
    assert plan_bridge(mirrors(0, 11), frozenset({11})) == BridgePlan("br0", clear_ours=True, mirror_to=(11,))


def test_the_last_mirror_gone_takes_clsact_and_promiscuity_with_it():
    assert plan_bridge(mirrors(0), frozenset()) == BridgePlan("br0", remove_clsact=True, promisc=False)


def test_someone_elses_filters_keep_the_clsact_qdisc():
    assert plan_bridge(mirrors(11, foreign_filters=1), frozenset()) == BridgePlan("br0", clear_ours=True,
                                                                                  promisc=False)


def test_a_bridge_we_never_mirrored_is_not_touched():
    assert plan_bridge(BridgeMirrors("br0", clsact=True, promisc=True, foreign_filters=2), frozenset()).empty
