"""The audit engine on typed inputs: each category found, nothing found when all is in place."""
from __future__ import annotations

from manager.audit import audit, filter_findings
from manager.audit.findings import (MAC_DUPLICATE, MAC_FOREIGN, NETWORK, NIC_ORDER, UNEXPECTED, UNREACHABLE, VNIC,
                                    Severity)
from manager.audit.inputs import FleetInput, HostInput, NicOrderInput, VnicInput
from manager.domain.vmorder import SourceNic
from manager.domain.vnic import VnicKind
from virtfleet.v1 import hostnet_pb2, netstate_pb2

MGMT = hostnet_pb2.NetworkAttachment(
    network="ovirtmgmt", nic="eth0", bridged=True, mtu=1500, default_route=True,
    ipv4=hostnet_pb2.Ipv4Config(method="static", address="192.0.2.11", prefixlen=24, gateway="192.0.2.1"))
VMNET = hostnet_pb2.NetworkAttachment(network="vmnet", nic="eth1", bridged=True)


def link(index: int, name: str, **kw) -> netstate_pb2.Link:
    kw.setdefault("mtu", 1500)
    kw.setdefault("flags", ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"])
    return netstate_pb2.Link(index=index, name=name, **kw)


def addr(address: str, prefixlen: int) -> netstate_pb2.Address:
    return netstate_pb2.Address(family="inet", address=address, prefixlen=prefixlen, scope="global")


def good_state() -> netstate_pb2.NetworkState:
    return netstate_pb2.NetworkState(hostname="host1", links=[
        link(1, "lo", mtu=65536, flags=["LOOPBACK", "UP", "LOWER_UP"], addresses=[
            netstate_pb2.Address(family="inet", address="127.0.0.1", prefixlen=8, scope="host")]),
        link(2, "eth0", master="ovirtmgmt"),
        link(3, "eth1", master="vmnet"),
        link(4, "ovirtmgmt", kind="bridge", addresses=[addr("192.0.2.11", 24)],
             bridge=netstate_pb2.BridgeInfo(ports=["eth0"])),
        link(5, "vmnet", kind="bridge", bridge=netstate_pb2.BridgeInfo(ports=["eth1", "vnet0"])),
        link(6, "vnet0", kind="tun", master="vmnet", mac="fe:54:00:00:00:01"),
        link(7, "macvtap0", kind="macvtap", mac="52:54:00:00:00:02", macvtap_mode="bridge", parent="eth2"),
        link(8, "eth2"),
    ], routes=[netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1", device="ovirtmgmt")])


VNICS = [
    VnicInput(vm="web1", name="nic1", mac="52:54:00:00:00:01", kind=VnicKind.BRIDGE, host="host1", network="vmnet",
              host_device="vnet0"),
    VnicInput(vm="web1", name="nic2", mac="52:54:00:00:00:02", kind=VnicKind.DIRECT, host="host1", direct_nic="eth2",
              direct_mode="bridge"),
]
ALLOCATED = {"52:54:00:00:00:01", "52:54:00:00:00:02"}


def fleet(state: netstate_pb2.NetworkState | None = None, *, vnics=VNICS, allocated=ALLOCATED, **host_kw) -> FleetInput:
    host = HostInput(name="host1", address="192.0.2.11", state=state if state is not None else good_state(),
                     reachable=host_kw.pop("reachable", True), silent_s=host_kw.pop("silent_s", 1.0),
                     desired=[MGMT, VMNET])
    return FleetInput(hosts=[host], vnics=list(vnics), allocated_macs=allocated, **host_kw)


def links_of(state: netstate_pb2.NetworkState) -> dict[str, netstate_pb2.Link]:
    return {l.name: l for l in state.links}


def test_a_host_as_desired_has_no_findings() -> None:
    assert audit(fleet()) == []


def test_missing_bridge_is_an_error_with_a_fix() -> None:
    state = good_state()
    del state.links[4]  # vmnet
    links_of(state)["eth1"].ClearField("master")
    findings = filter_findings(audit(fleet(state)), category=NETWORK)
    assert [(f.object, f.expected, f.found, f.severity) for f in findings] == [
        ("network vmnet: bridge vmnet", "present", "missing", Severity.ERROR)]
    assert findings[0].fixable and "audit fix" in findings[0].fix


def test_wrong_mtu_and_moved_port_are_found() -> None:
    state = good_state()
    links_of(state)["vmnet"].mtu = 1400
    links_of(state)["eth1"].master = "ovirtmgmt"
    objects = {f.object: (f.expected, f.found) for f in audit(fleet(state)) if f.category == NETWORK}
    assert objects == {"network vmnet: vmnet mtu": ("1500", "1400"), "network vmnet: eth1 master": ("vmnet", "ovirtmgmt")}


def test_unexpected_bridge_and_address() -> None:
    state = good_state()
    state.links.append(link(9, "br-extra", kind="bridge"))
    state.links.append(link(10, "virbr0", kind="bridge"))  # libvirt's, not ours to judge
    links_of(state)["eth2"].addresses.append(addr("198.51.100.7", 24))
    found = {(f.category, f.object) for f in audit(fleet(state))}
    assert found == {(UNEXPECTED, "bridge br-extra"), (UNEXPECTED, "address 198.51.100.7/24 on eth2")}


def test_vnic_device_missing_on_wrong_bridge_wrong_mode_wrong_mac() -> None:
    state = good_state()
    links_of(state)["vnet0"].master = "ovirtmgmt"
    links_of(state)["macvtap0"].macvtap_mode = "vepa"
    findings = {f.object: (f.expected, f.found) for f in audit(fleet(state)) if f.category == VNIC}
    assert findings == {"vm web1 vNIC nic1: bridge of vnet0": ("vmnet", "ovirtmgmt"),
                        "vm web1 vNIC nic2: macvtap mode of macvtap0": ("bridge", "vepa")}

    state = good_state()
    links_of(state)["vnet0"].mac = "fe:54:00:00:00:99"
    del state.links[6]  # macvtap0
    findings = {f.object: (f.expected, f.found) for f in audit(fleet(state)) if f.category == VNIC}
    assert findings["vm web1 vNIC nic1: MAC of vnet0"] == ("fe:54:00:00:00:01", "fe:54:00:00:00:99")
    assert findings["vm web1 vNIC nic2: device"][1] == "missing"


def test_a_vnic_whose_host_device_disagrees_with_its_recorded_link_state() -> None:
    cable_out = [VNICS[0]._replace(link_down=True), VNICS[1]]
    state = good_state()
    links_of(state)["vnet0"].ClearField("flags")          # down, as the agent keeps it while the cable is out
    assert [f for f in audit(fleet(state, vnics=cable_out)) if f.category == VNIC] == []
    findings = {f.object: (f.expected, f.found, f.fix) for f in audit(fleet(vnics=cable_out)) if f.category == VNIC}
    assert findings == {"vm web1 vNIC nic1: link of vnet0": (
        "down", "up", "virtfleet vm nic set web1 nic1 --link down (re-applies the recorded link state)")}
    findings = {f.object: (f.expected, f.found) for f in audit(fleet(state)) if f.category == VNIC}
    assert findings == {"vm web1 vNIC nic1: link of vnet0": ("up", "down")}   # recorded up, found down


def test_foreign_mac_on_a_hand_made_tap() -> None:
    state = good_state()
    state.links.append(link(11, "tap-hand", kind="tun", mac="02:aa:bb:cc:dd:ee"))
    findings = filter_findings(audit(fleet(state)), category=MAC_FOREIGN)
    assert [(f.host, f.object) for f in findings] == [("host1", "MAC 02:aa:bb:cc:dd:ee on tap-hand")]


def test_no_pools_known_means_no_foreign_check() -> None:
    state = good_state()
    state.links.append(link(11, "tap-hand", kind="tun", mac="02:aa:bb:cc:dd:ee"))
    assert filter_findings(audit(fleet(state, allocated=None)), category=MAC_FOREIGN) == []


def test_two_vms_with_the_same_mac_are_a_duplicate_datacenter_wide() -> None:
    twin = VnicInput(vm="web2", name="nic1", mac="52-54-00-00-00-01", kind=VnicKind.BRIDGE, network="vmnet")
    findings = filter_findings(audit(fleet(vnics=[*VNICS, twin])), category=MAC_DUPLICATE)
    assert [(f.object, f.found) for f in findings] == [("MAC 52:54:00:00:00:01", "vNICs web1/nic1, web2/nic1")]


def test_the_same_mac_on_two_hosts_devices_is_a_duplicate() -> None:
    other = HostInput(name="host2", address="192.0.2.12", reachable=True, silent_s=0.5, state=netstate_pb2.NetworkState(
        links=[link(5, "vnet3", kind="tun", mac="fe:54:00:00:00:01")]))
    f = fleet()
    findings = filter_findings(audit(FleetInput([*f.hosts, other], f.vnics, f.allocated_macs)), category=MAC_DUPLICATE)
    assert [(x.object, x.found) for x in findings] == [
        ("MAC fe:54:00:00:00:01 (as seen on hosts)", "host1:vnet0, host2:vnet3")]


def test_silent_host_is_unreachable_and_not_audited_on_stale_state() -> None:
    state = good_state()
    del state.links[4]
    findings = audit(fleet(state, reachable=False, silent_s=95.0, unreachable_after_s=30))
    assert [(f.category, f.host, f.found) for f in findings] == [(UNREACHABLE, "host1", "silent for 95 s")]
    assert not findings[0].fixable


def test_nic_order_differs_from_template() -> None:
    source = [SourceNic("nic1", "0000:00:03.0"), SourceNic("nic2", "0000:00:04.0")]
    vm = [SourceNic("nic1", "0000:00:04.0", "52:54:00:00:00:05"), SourceNic("nic2", "0000:00:03.0", "52:54:00:00:00:06")]
    item = NicOrderInput(vm="web3", source_kind="template", source_name="tpl", source=source, nics=vm)
    findings = filter_findings(audit(fleet(nic_orders=[item])), category=NIC_ORDER)
    assert findings and all(f.object.startswith("vm web3:") for f in findings)
    ok = [SourceNic("nic1", "0000:00:03.0", "52:54:00:00:00:05"), SourceNic("nic2", "0000:00:04.0", "52:54:00:00:00:06")]
    assert audit(fleet(nic_orders=[NicOrderInput("web4", "template", "tpl", source, ok)])) == []


def test_finding_ids_are_stable_across_runs_and_distinct() -> None:
    state = good_state()
    links_of(state)["vmnet"].mtu = 1400
    links_of(state)["eth1"].master = "ovirtmgmt"
    first, second = audit(fleet(state)), audit(fleet(state))
    assert [f.id for f in first] == [f.id for f in second]
    assert len({f.id for f in first}) == len(first)


def test_pool_macs_as_integers_match_taps_and_macvtaps() -> None:
    state = good_state()
    state.links.append(link(11, "tap-hand", kind="tun", mac="02:aa:bb:cc:dd:ee"))
    as_ints = {int(m.replace(":", ""), 16) for m in ALLOCATED}
    findings = filter_findings(audit(fleet(state, allocated=as_ints)), category=MAC_FOREIGN)
    assert [f.object for f in findings] == ["MAC 02:aa:bb:cc:dd:ee on tap-hand"]
