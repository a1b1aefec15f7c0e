"""The plan: the kernel steps, in a safe order, as `ip` commands read — pure, no kernel needed."""

from __future__ import annotations

from agent.net.hostnet.canonicalize import merge
from agent.net.hostnet.model import devices
from agent.net.hostnet.plan import plan
from virtfleet.v1 import hostnet_pb2, netstate_pb2

MAC = {"eth0": "52:54:00:00:00:10", "eth1": "52:54:00:00:00:11", "eth2": "52:54:00:00:00:12", "eth3": "52:54:00:00:00:13"}


def nic(name: str, mtu: int = 1500, up: bool = True, **kw) -> netstate_pb2.Link:
    return netstate_pb2.Link(name=name, kind="veth", link_type="ether", link_netnsid=0, mtu=mtu, mac=MAC[name],
                             flags=["BROADCAST", "MULTICAST", *(["UP"] if up else [])], **kw)


def state(*links: netstate_pb2.Link, routes=()) -> netstate_pb2.NetworkState:
    return netstate_pb2.NetworkState(links=list(links), routes=list(routes))


def static(address: str, prefix: int = 24, gateway: str = "") -> hostnet_pb2.Ipv4Config:
    return hostnet_pb2.Ipv4Config(method="static", address=address, prefixlen=prefix, gateway=gateway)


def steps_for(current, running=None, originals=None, **request) -> list[str]:
    return _plan(current, running, originals, **request).describe()


def _plan(current, running=None, originals=None, **request):
    running = running or hostnet_pb2.HostNetworkConfig()
    config = merge(running, hostnet_pb2.SetupNetworksRequest(**request))
    return plan(current, devices(running), devices(config), originals or {})


def test_bridged_network_moves_the_nics_address_onto_its_bridge() -> None:
    current = state(nic("eth1", addresses=[netstate_pb2.Address(family="inet", address="192.0.2.5", prefixlen=24)]),
                    routes=[netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1", device="eth1",
                                               protocol="boot", scope="global")])
    steps = steps_for(current, networks=[hostnet_pb2.NetworkAttachment(
        network="blue", nic="eth1", bridged=True, ipv4=static("192.0.2.5", 24, "192.0.2.1"), default_route=True)])
    assert steps == [
        "ip link add blue address 52:54:00:00:00:11 mtu 1500 type bridge stp_state 0",
        "ip link set eth1 master blue",
        "ip link set blue up",
        "ip addr add 192.0.2.5/24 brd 192.0.2.255 dev blue",
        "ip route replace default via 192.0.2.1 dev blue proto static",
        "ip addr del 192.0.2.5/24 dev eth1",
    ]


def test_routes_through_a_new_port_follow_it_onto_the_bridge_or_are_deleted_as_undoable_steps() -> None:
    def route(destination: str, gateway: str) -> netstate_pb2.Route:
        return netstate_pb2.Route(family="inet", destination=destination, gateway=gateway, device="eth1",
                                  protocol="static", scope="global")

    current = state(nic("eth1", addresses=[netstate_pb2.Address(family="inet", address="192.0.2.5", prefixlen=24),
                                           netstate_pb2.Address(family="inet", address="10.9.0.5", prefixlen=16)]),
                    routes=[route("198.51.100.0/24", "192.0.2.1"), route("10.20.0.0/16", "10.9.0.1")])
    steps = steps_for(current, networks=[hostnet_pb2.NetworkAttachment(
        network="blue", nic="eth1", bridged=True, ipv4=static("192.0.2.5", 24))])
    assert steps[-4:] == [
        "ip route replace 198.51.100.0/24 via 192.0.2.1 dev blue proto static",
        "ip route del 10.20.0.0/16 via 10.9.0.1 dev eth1",
        "ip addr del 10.9.0.5/16 dev eth1",
        "ip addr del 192.0.2.5/24 dev eth1",
    ]


def test_bridgeless_network_puts_address_and_mtu_on_the_nic_and_raises_it() -> None:
    steps = steps_for(state(nic("eth2", up=False)), networks=[hostnet_pb2.NetworkAttachment(
        network="storage", nic="eth2", mtu=9000, ipv4=static("198.51.100.7"))])
    assert steps == [
        "ip link set eth2 mtu 9000",
        "ip link set eth2 up",
        "ip addr add 198.51.100.7/24 brd 198.51.100.255 dev eth2",
    ]


def test_removing_a_network_undoes_what_adding_it_made() -> None:
    added = _plan(state(nic("eth2", up=False)), networks=[hostnet_pb2.NetworkAttachment(
        network="blue", nic="eth2", mtu=9000, bridged=True, ipv4=static("198.51.100.7"))])
    after = state(
        nic("eth2", mtu=9000, master="blue"),
        netstate_pb2.Link(name="blue", kind="bridge", mtu=9000, mac=MAC["eth2"], flags=["UP"],
                          addresses=[netstate_pb2.Address(family="inet", address="198.51.100.7", prefixlen=24)]),
    )
    running = merge(hostnet_pb2.HostNetworkConfig(), hostnet_pb2.SetupNetworksRequest(networks=[
        hostnet_pb2.NetworkAttachment(network="blue", nic="eth2", mtu=9000, bridged=True, ipv4=static("198.51.100.7"))]))
    removed = _plan(after, running, added.originals, remove_networks=["blue"])
    assert removed.describe() == [
        "ip addr del 198.51.100.7/24 dev blue",
        "ip link set eth2 nomaster",
        "ip link set blue down",
        "ip link del blue",
        "ip link set eth2 mtu 1500",
        "ip link set eth2 down",
    ]
    assert removed.originals == {}


def test_a_second_plan_for_what_is_there_is_empty() -> None:
    running = hostnet_pb2.HostNetworkConfig(networks=[hostnet_pb2.NetworkAttachment(network="red", nic="eth1")])
    assert steps_for(state(nic("eth1")), running, networks=[hostnet_pb2.NetworkAttachment(network="red", nic="eth1")]) == []


def test_mtu_rises_bottom_up_and_falls_top_down() -> None:
    def host(mtu: int) -> netstate_pb2.NetworkState:
        return state(nic("eth1", mtu=mtu),
                     netstate_pb2.Link(name="eth1.10", kind="vlan", vlan_id=10, parent="eth1", mtu=mtu, flags=["UP"]))

    def config(mtu: int) -> hostnet_pb2.HostNetworkConfig:
        return hostnet_pb2.HostNetworkConfig(networks=[hostnet_pb2.NetworkAttachment(network="v", nic="eth1", vlan=10, mtu=mtu)])

    up = plan(host(1500), devices(config(1500)), devices(config(9000)), {})
    assert up.describe() == ["ip link set eth1 mtu 9000", "ip link set eth1.10 mtu 9000"]
    down = plan(host(9000), devices(config(9000)), devices(config(1500)), {})
    assert down.describe() == ["ip link set eth1.10 mtu 1500", "ip link set eth1 mtu 1500"]


def test_vm_network_on_a_vlan_of_a_bond() -> None:
    steps = steps_for(state(nic("eth2"), nic("eth3")),
                      bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth3", "eth2"], mode="active-backup")],
                      networks=[hostnet_pb2.NetworkAttachment(network="vm", nic="bond0", vlan=20, bridged=True)])
    assert steps == [
        "ip link add bond0 type bond mode 1 miimon 100",
        "ip link set eth2 down",
        "ip link set eth2 master bond0",
        "ip link set eth3 down",
        "ip link set eth3 master bond0",
        "ip link set bond0 up",
        "ip link add link bond0 name bond0.20 mtu 1500 type vlan id 20",
        "ip link set bond0.20 up",
        "ip link add vm address 52:54:00:00:00:12 mtu 1500 type bridge stp_state 0",
        "ip link set bond0.20 master vm",
        "ip link set vm up",
    ]


def test_moving_a_network_to_another_nic_gives_the_first_nic_back() -> None:
    running = hostnet_pb2.HostNetworkConfig(networks=[hostnet_pb2.NetworkAttachment(network="vm", nic="eth1", bridged=True, mtu=1400)])
    current = state(nic("eth1", mtu=1400, master="vm"), nic("eth2"),
                    netstate_pb2.Link(name="vm", kind="bridge", mtu=1400, mac=MAC["eth1"], flags=["UP"]))
    moved = _plan(current, running, {"eth1": {"mtu": 1500, "up": False}},
                  networks=[hostnet_pb2.NetworkAttachment(network="vm", nic="eth2", bridged=True, mtu=1400)])
    assert moved.describe() == [
        "ip link set eth1 nomaster",
        "ip link set eth1 mtu 1500",
        "ip link set eth1 down",
        "ip link set eth2 mtu 1400",
        "ip link set eth2 master vm",
    ]
    assert moved.originals == {"eth2": {"mtu": 1500, "up": True}}


def test_every_step_carries_an_undo_of_the_same_device() -> None:
    p = _plan(state(nic("eth1"), nic("eth2")), networks=[
        hostnet_pb2.NetworkAttachment(network="a", nic="eth1", bridged=True, mtu=1400, ipv4=static("192.0.2.9")),
        hostnet_pb2.NetworkAttachment(network="b", nic="eth2", mtu=9000)])
    for step in p.steps:
        name = lambda op: getattr(op, "name", None) or getattr(op, "link", None) or getattr(op, "device", None)
        assert name(step.do) == name(step.undo), step.describe()
    assert {"a", "eth1", "eth2"} <= p.touched


def test_a_management_bridge_takes_over_every_address_and_route_of_its_nic_as_they_are() -> None:
    from agent.net.hostnet.canonicalize import management

    current = state(nic("eth0", mtu=1450, addresses=[
        netstate_pb2.Address(family="inet", address="192.0.2.11", prefixlen=24, broadcast="192.0.2.255", label="eth0",
                             valid_lft=-1, preferred_lft=-1),
        netstate_pb2.Address(family="inet", address="10.7.0.11", prefixlen=16, flags=["noprefixroute"], label="eth0",
                             valid_lft=900, preferred_lft=600),
        netstate_pb2.Address(family="inet", address="192.0.2.12", prefixlen=24, label="eth0:sec", valid_lft=-1,
                             preferred_lft=-1, flags=["secondary"]),
    ]), routes=[
        netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1", device="eth0", protocol="boot",
                           scope="global"),
        netstate_pb2.Route(family="inet", destination="192.0.2.0/24", device="eth0", protocol="kernel", scope="link"),
    ])
    request = management(current, "eth0", "ovirtmgmt").request
    assert [(n.network, n.nic, n.mtu, n.bridged, n.ipv4.address, n.ipv4.gateway, n.default_route)
            for n in request.networks] == [("ovirtmgmt", "eth0", 1450, True, "192.0.2.11", "192.0.2.1", True)]
    config = merge(hostnet_pb2.HostNetworkConfig(), request)
    steps = plan(current, devices(hostnet_pb2.HostNetworkConfig()), devices(config, ["ovirtmgmt"]), {}).describe()
    assert steps == [
        "ip link add ovirtmgmt address 52:54:00:00:00:10 mtu 1450 type bridge stp_state 0",
        "ip link set eth0 master ovirtmgmt",
        "ip link set ovirtmgmt up",
        "ip addr add 192.0.2.11/24 brd 192.0.2.255 dev ovirtmgmt",
        "ip addr add 10.7.0.11/16 dev ovirtmgmt noprefixroute valid_lft 900 preferred_lft 600",
        "ip addr add 192.0.2.12/24 dev ovirtmgmt label ovirtmgmt:sec",
        "ip route replace default via 192.0.2.1 dev ovirtmgmt",  # moved as it is: no `proto static`
        "ip addr del 192.0.2.12/24 dev eth0",
        "ip addr del 10.7.0.11/16 dev eth0",
        "ip addr del 192.0.2.11/24 dev eth0",
    ]


def test_a_management_request_records_a_leased_address_as_dhcp() -> None:
    from agent.net.hostnet.canonicalize import management

    current = state(nic("eth0", addresses=[netstate_pb2.Address(family="inet", address="192.0.2.50", prefixlen=24,
                                                                 valid_lft=3600, preferred_lft=3600)]),
                    routes=[netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1",
                                               device="eth0", protocol="dhcp", metric=100)])
    [network] = management(current, "eth0", "ovirtmgmt").request.networks
    assert (network.ipv4.method, network.ipv4.address, network.ipv4.gateway, network.default_route) == \
        ("dhcp", "", "192.0.2.1", True)
