"""Whether a host carries its required networks: the verdict the monitor reaches from each report (pure)."""
from __future__ import annotations

from manager.service.operational import verdict
from virtfleet.v1 import hostnet_pb2, netstate_pb2


def _vmnet() -> hostnet_pb2.NetworkAttachment:
    return hostnet_pb2.NetworkAttachment(network="vmnet", nic="eth1", mtu=1500, bridged=True)


def _state(*, bridge: bool = True, mtu: int = 1500) -> netstate_pb2.NetworkState:
    links = [netstate_pb2.Link(name="eth1", mtu=1500, flags=["UP"], master="vmnet" if bridge else "")]
    if bridge:
        links.append(netstate_pb2.Link(name="vmnet", kind="bridge", mtu=mtu, flags=["UP"]))
    return netstate_pb2.NetworkState(links=links)


def test_a_host_carrying_its_required_networks_is_operational():
    assert verdict([_vmnet()], _state()) == ""
    assert verdict([], netstate_pb2.NetworkState()) == ""


def test_a_missing_required_network_is_named():
    reason = verdict([_vmnet()], _state(bridge=False))
    assert reason.startswith("required network vmnet is missing") and "bridge vmnet" in reason


def test_an_out_of_sync_required_network_is_named_with_what_differs():
    reason = verdict([_vmnet()], _state(mtu=9000))
    assert reason == "required network vmnet is out of sync (vmnet mtu: expected 1500, found 9000)"
