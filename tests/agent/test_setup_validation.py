"""Every setupNetworks rule refuses bad requests before the kernel is touched, naming the field.

Pure: a reported host state with four NICs, and a capability set that can
include bonding and 802.1Q even though this kernel has neither, so every rule
is tested everywhere.
"""

from __future__ import annotations

import pytest

from agent.net.hostnet.validation import validate
from virtfleet import rules
from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.v1 import hostnet_pb2, netstate_pb2

ALL = ["bridge", "tun", "veth", "bond", "vlan"]
THIS_KERNEL = ["bridge", "tun", "veth", "macvlan", "macvtap", "vxlan"]


def host(*extra: netstate_pb2.Link) -> netstate_pb2.NetworkState:
    nics = [netstate_pb2.Link(name=f"eth{i}", kind="veth", link_type="ether", link_netnsid=0, mtu=1500) for i in range(4)]
    return netstate_pb2.NetworkState(links=[netstate_pb2.Link(name="lo", link_type="loopback"), *nics, *extra])


def net(name: str = "blue", nic: str = "eth1", **kw) -> hostnet_pb2.NetworkAttachment:
    return hostnet_pb2.NetworkAttachment(network=name, nic=nic, **kw)


def bond(name: str = "bond0", slaves=("eth2", "eth3"), mode: str = "1", **options: str) -> hostnet_pb2.Bond:
    return hostnet_pb2.Bond(name=name, slaves=list(slaves), mode=mode, options=options)


def check(features=ALL, running=None, state=None, **request) -> hostnet_pb2.HostNetworkConfig:
    return validate(hostnet_pb2.SetupNetworksRequest(**request), running or hostnet_pb2.HostNetworkConfig(),
                    state or host(), features)


def refused(field: str, **request) -> str:
    with pytest.raises(InvalidArgument) as err:
        check(**request)
    assert err.value.field == field
    return err.value.message


def test_a_bridged_and_a_bridgeless_network_pass_and_make_the_new_config() -> None:
    config = check(networks=[net("blue", "eth1", bridged=True), net("red", "eth2")])
    assert [n.network for n in config.networks] == ["blue", "red"]


@pytest.mark.parametrize("mode", ["1", "2", "4", "active-backup", "balance-xor", "802.3ad"])
def test_bond_modes_1_2_4_may_carry_a_vm_network(mode: str) -> None:
    check(bonds=[bond(mode=mode, miimon="100")], networks=[net("vmnet", "bond0", bridged=True)])


@pytest.mark.parametrize("mode", ["0", "3", "5", "6", "balance-rr", "broadcast", "balance-tlb", "balance-alb"])
def test_bond_modes_0_3_5_6_are_refused_under_a_vm_network_with_the_seeds_reason(mode: str) -> None:
    message = refused("bonds[0].mode", bonds=[bond(mode=mode)], networks=[net("vmnet", "bond0", bridged=True)])
    assert "likely to make connections fail" in message and "mode 1" in message and "bond0" in message


@pytest.mark.parametrize("mode", [str(m) for m in range(7)])
def test_every_bond_mode_may_carry_a_non_vm_network(mode: str) -> None:
    check(bonds=[bond(mode=mode)], networks=[net("storage", "bond0", bridged=False)])


@pytest.mark.parametrize("mode", [str(m) for m in range(7)])
def test_every_bond_mode_may_stand_alone(mode: str) -> None:
    check(bonds=[bond(mode=mode)])


def test_a_vm_network_on_a_vlan_of_a_bond_follows_the_same_mode_rule() -> None:
    refused("bonds[0].mode", bonds=[bond(mode="0")], networks=[net("vmnet", "bond0", bridged=True, vlan=10)])


@pytest.mark.parametrize("option", ["arp_interval", "arp_ip_target"])
def test_arp_monitoring_is_refused_under_a_vm_network(option: str) -> None:
    value = "192.0.2.1" if option == "arp_ip_target" else "1000"
    message = refused("bonds[0].options", bonds=[bond(**{option: value})], networks=[net("vmnet", "bond0", bridged=True)])
    assert "MII monitoring (miimon)" in message and option in message


def test_miimon_zero_is_refused_under_a_vm_network() -> None:
    refused("bonds[0].options", bonds=[bond(miimon="0")], networks=[net("vmnet", "bond0", bridged=True)])


def test_arp_monitoring_is_allowed_on_a_bond_without_vm_network() -> None:
    check(bonds=[bond(mode="0", arp_interval="1000", arp_ip_target="192.0.2.1")], networks=[net("st", "bond0")])


def test_unknown_bond_mode_is_refused() -> None:
    assert "unknown bond mode" in refused("bonds[0].mode", bonds=[bond(mode="7")])


def test_a_bond_needs_two_slaves() -> None:
    refused("bonds[0].slaves", bonds=[bond(slaves=["eth2"])])
    refused("bonds[0].slaves", bonds=[bond(slaves=["eth2", "eth2"])])


def test_a_nic_is_a_slave_of_one_bond_at_most() -> None:
    message = refused("bonds[1].slaves", bonds=[bond("bond0", ["eth0", "eth1"]), bond("bond1", ["eth1", "eth2"])])
    assert "eth1" in message and "bond0" in message


def test_an_enslaved_nic_carries_no_network() -> None:
    refused("networks[0].nic", bonds=[bond()], networks=[net("blue", "eth2")])


def test_a_bond_slave_must_be_a_nic_of_this_host() -> None:
    assert "eth9" in refused("bonds[0].slaves", bonds=[bond(slaves=["eth2", "eth9"])])


def test_one_untagged_network_per_nic() -> None:
    message = refused("networks[1].nic", networks=[net("blue", "eth1"), net("red", "eth1")])
    assert "blue" in message


def test_one_untagged_network_per_bond() -> None:
    refused("networks[1].nic", bonds=[bond()], networks=[net("a", "bond0"), net("b", "bond0")])


def test_an_untagged_and_tagged_networks_may_share_a_nic() -> None:
    check(networks=[net("blue", "eth1"), net("red", "eth1", vlan=10), net("green", "eth1", vlan=20)])


def test_one_network_per_vlan_of_a_nic() -> None:
    refused("networks[1].vlan", networks=[net("red", "eth1", vlan=10), net("green", "eth1", vlan=10)])


@pytest.mark.parametrize("vlan", [4095, 5000])
def test_vlan_ids_are_1_to_4094(vlan: int) -> None:
    assert "1-4094" in refused("networks[0].vlan", networks=[net(vlan=vlan)])


@pytest.mark.parametrize("vlan", [1, 4094])
def test_vlan_id_bounds_pass(vlan: int) -> None:
    check(networks=[net(vlan=vlan)])


def test_vlan_mtu_above_the_devices_mtu_is_refused() -> None:
    message = refused("networks[1].mtu", networks=[net("blue", "eth1", mtu=1500), net("jumbo", "eth1", vlan=10, mtu=9000)])
    assert "9000" in message and "1500" in message


def test_vlan_mtu_up_to_the_devices_mtu_passes() -> None:
    check(networks=[net("blue", "eth1", mtu=9000, bridged=True), net("jumbo", "eth1", vlan=10, mtu=9000, bridged=True)])


@pytest.mark.parametrize("mtu", [10, 70000])
def test_mtu_out_of_range_is_refused(mtu: int) -> None:
    refused("networks[0].mtu", networks=[net(mtu=mtu)])


@pytest.mark.parametrize("name", ["a" * 16, "with space", "a/b", "a:b", "tab\tname", ""])
def test_bad_network_names_are_refused(name: str) -> None:
    refused("networks[0].network", networks=[net(name)])


def test_a_15_byte_name_passes_and_16_bytes_of_utf8_do_not() -> None:
    check(networks=[net("n" * 15)])
    refused("networks[0].network", networks=[net("é" * 8)])


@pytest.mark.parametrize("name", ["b" * 16, "b o", "b/o", "b:o"])
def test_bad_bond_names_are_refused(name: str) -> None:
    refused("bonds[0].name", bonds=[bond(name)])


def test_a_vlan_device_name_too_long_is_refused() -> None:
    state = host(netstate_pb2.Link(name="enp0s31f6abcd", kind="", link_type="ether", link_netnsid=-1))
    with pytest.raises(InvalidArgument) as err:
        check(state=state, networks=[net("blue", "enp0s31f6abcd", vlan=1000)])
    assert err.value.field == "networks[0].vlan" and "enp0s31f6abcd.1000" in err.value.message


def test_unknown_nic_is_refused() -> None:
    assert "eth7" in refused("networks[0].nic", networks=[net(nic="eth7")])


def test_a_bridge_named_after_a_nic_is_refused() -> None:
    refused("networks[0].network", networks=[net("eth0", "eth1", bridged=True)])


def test_static_ipv4_needs_a_valid_address() -> None:
    refused("networks[0].ipv4.address", networks=[net(ipv4=hostnet_pb2.Ipv4Config(method="static", address="300.1.1.1", prefixlen=24))])
    refused("networks[0].ipv4.method", networks=[net(ipv4=hostnet_pb2.Ipv4Config(method="bootp"))])


def test_default_route_needs_a_gateway_and_only_one_network_has_it() -> None:
    refused("networks[0].default_route", networks=[net(default_route=True)])
    gw = hostnet_pb2.Ipv4Config(method="static", address="192.0.2.5", prefixlen=24, gateway="192.0.2.1")
    gw2 = hostnet_pb2.Ipv4Config(method="static", address="198.51.100.5", prefixlen=24, gateway="198.51.100.1")
    refused("networks[1].default_route", networks=[net("a", "eth1", ipv4=gw, default_route=True),
                                                   net("b", "eth2", ipv4=gw2, default_route=True)])


def test_removing_what_is_not_there_is_refused() -> None:
    refused("remove_networks[0]", remove_networks=["nothing"])
    refused("remove_bonds[0]", remove_bonds=["bond9"])


def test_rules_apply_to_the_whole_resulting_config() -> None:
    running = hostnet_pb2.HostNetworkConfig(networks=[net("blue", "eth1")])
    with pytest.raises(InvalidArgument) as err:
        check(running=running, networks=[net("red", "eth1")])
    assert err.value.field == "networks[0].nic" and "blue" in err.value.message


def test_a_bond_carrying_a_network_cannot_be_removed_alone() -> None:
    running = hostnet_pb2.HostNetworkConfig(networks=[net("st", "bond0")], bonds=[bond()])
    refused("network st (running).nic", running=running, remove_bonds=["bond0"])


def test_a_nic_enslaved_elsewhere_is_a_failed_precondition() -> None:
    state = host(netstate_pb2.Link(name="ovirtmgmt", kind="bridge"))
    state.links[2].master = "ovirtmgmt"  # eth1
    with pytest.raises(FailedPrecondition, match="eth1 is already a port of ovirtmgmt"):
        check(state=state, networks=[net("blue", "eth1")])


def test_a_bond_without_kernel_bonding_is_failed_precondition_naming_it() -> None:
    with pytest.raises(FailedPrecondition, match=r"bonding.*capability 'bond'"):
        check(features=THIS_KERNEL, bonds=[bond()])


def test_a_vlan_without_kernel_8021q_is_failed_precondition_naming_it() -> None:
    with pytest.raises(FailedPrecondition, match=r"8021q"):
        check(features=THIS_KERNEL, networks=[net(vlan=10)])


def test_rule_errors_come_before_capability_errors() -> None:
    refused("bonds[0].mode", features=THIS_KERNEL, bonds=[bond(mode="0")], networks=[net("vm", "bond0", bridged=True)])


@pytest.mark.parametrize("request_kw, field", [
    ({"networks": [net(f"n{i}", "eth1", vlan=i % 4094 + 1) for i in range(rules.MAX_ITEMS_PER_REQUEST + 1)]}, "networks"),
    ({"remove_networks": [f"n{i}" for i in range(rules.MAX_ITEMS_PER_REQUEST + 1)]}, "remove_networks"),
    ({"bonds": [bond(f"bond{i}") for i in range(rules.MAX_ITEMS_PER_REQUEST + 1)]}, "bonds"),
    ({"remove_bonds": [f"bond{i}" for i in range(rules.MAX_ITEMS_PER_REQUEST + 1)]}, "remove_bonds"),
    ({"bonds": [bond(slaves=[f"e{i}" for i in range(rules.MAX_BOND_SLAVES + 1)])]}, "bonds[0].slaves"),
    ({"connectivity_timeout_s": 2**32 - 1}, "connectivity_timeout_s"),
])
def test_list_lengths_and_the_connectivity_wait_are_bounded_as_the_manager_bounds_them(request_kw, field) -> None:
    """The same virtfleet.rules limits as the manager's door, checked before anything is merged."""
    assert "at most" in refused(field, **request_kw) or "outside" in refused(field, **request_kw)
