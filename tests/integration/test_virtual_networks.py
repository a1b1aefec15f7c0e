"""Seed 003's connectivity table, on virtual networks the agent defines through a lab host's own libvirtd.

For each mode, two guests (veth endpoints in namespaces of their own, plugged into
the network's bridge as a vnet tap would be), the host, and an outside peer (a
namespace on the lab switch, where the host's eth0 also is). Each place runs a
small TCP service that answers with the address it saw the caller come from;
the table's four questions are four connections.

  mode       host  other guests  outside  visible from outside
  bridged    yes   yes           yes      yes
  nat        yes   yes           yes      no
  routed     yes   yes           yes      yes
  isolated   yes   yes           no       no

"Visible from outside" is asked with a route to the guests' subnet on the outside
peer (routed mode needs one, as the seed says), so nat and isolated say "no"
because of the host's rules, not for lack of a route.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from virtfleet.v1 import vm_pb2

from .conftest import VmLab, sh
from .reachability import Listener, seen_as

PORT = 7707
LAB_HOST_ADDRESS = "192.0.2.11"   # host1's eth0 on the lab switch
OUTSIDE = "192.0.2.200"
BRIDGED_NIC = "eth6"              # the host NIC under the existing bridge of bridged mode


@dataclass(frozen=True)
class Mode:
    name: str
    proto: int
    bridge: str
    prefix: str       # the guests' /24, e.g. "10.70.1"

    def addr(self, last: int) -> str:
        return f"{self.prefix}.{last}"


MODES = {
    "bridged": Mode("bridged", vm_pb2.VIRTUAL_NETWORK_MODE_BRIDGED, "br-lan", "198.51.100"),
    "nat": Mode("nat", vm_pb2.VIRTUAL_NETWORK_MODE_NAT, "vfnat0", "10.70.1"),
    "routed": Mode("routed", vm_pb2.VIRTUAL_NETWORK_MODE_ROUTED, "vfrt0", "10.70.2"),
    "isolated": Mode("isolated", vm_pb2.VIRTUAL_NETWORK_MODE_ISOLATED, "vfiso0", "10.70.3"),
}
TABLE = {  # seed 003: (host, other guests on the host, outside, visible from outside)
    "bridged": (True, True, True, True),
    "nat": (True, True, True, False),
    "routed": (True, True, True, True),
    "isolated": (True, True, False, False),
}


@dataclass
class Place:
    netns: str
    address: str
    listener: Listener


@pytest.fixture(scope="module")
def outside(vm_lab: VmLab) -> Iterator[Place]:
    """A peer on the lab switch, outside the host (on the bridged LAN's subnet too)."""
    ns = f"{vm_lab.layout.prefix}peer"
    port = f"{vm_lab.layout.prefix}peer"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", vm_lab.switch_netns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", vm_lab.switch_netns, "link", "set", port, "master", "switch0", "up")
        for cmd in (["link", "set", "lo", "up"], ["addr", "add", f"{OUTSIDE}/24", "dev", "eth0"],
                    ["addr", "add", f"{MODES['bridged'].addr(200)}/24", "dev", "eth0"], ["link", "set", "eth0", "up"]):
            sh("ip", "-n", ns, *cmd)
        listener = Listener(ns, PORT)
        yield Place(ns, OUTSIDE, listener)
        listener.close()
    finally:
        sh("ip", "netns", "del", ns)


@pytest.fixture(scope="module")
def host_listener(vm_lab: VmLab) -> Iterator[Listener]:
    listener = Listener(vm_lab.netns, PORT)
    yield listener
    listener.close()


def _host_ip(lab: VmLab, *args: str) -> None:
    sh("ip", "-n", lab.netns, *args)


@pytest.fixture
def network(request, vm_lab: VmLab, vm_agent, outside, host_listener) -> Iterator[Mode]:
    mode: Mode = MODES[request.param]
    if mode.name == "bridged":  # the existing host bridge, on a NIC of the lab switch
        _host_ip(vm_lab, "link", "add", mode.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _host_ip(vm_lab, "link", "set", BRIDGED_NIC, "master", mode.bridge)
        _host_ip(vm_lab, "addr", "add", f"{mode.addr(1)}/24", "dev", mode.bridge)
        _host_ip(vm_lab, "link", "set", mode.bridge, "up")
        spec = vm_pb2.VirtualNetwork(name=f"t-{mode.name}", mode=mode.proto, bridge=mode.bridge)
    else:
        spec = vm_pb2.VirtualNetwork(name=f"t-{mode.name}", mode=mode.proto, bridge=mode.bridge,
                                     address=mode.addr(1), prefixlen=24)
        sh("ip", "-n", outside.netns, "route", "add", f"{mode.addr(0)}/24", "via", LAB_HOST_ADDRESS)
    vm_agent.DefineVirtualNetwork(vm_pb2.DefineVirtualNetworkRequest(network=spec))
    try:
        started = vm_agent.StartVirtualNetwork(vm_pb2.StartVirtualNetworkRequest(name=spec.name))
        assert started.active
        yield mode
    finally:
        for call, req in ((vm_agent.DestroyVirtualNetwork, vm_pb2.DestroyVirtualNetworkRequest),
                          (vm_agent.UndefineVirtualNetwork, vm_pb2.UndefineVirtualNetworkRequest)):
            try:
                call(req(name=spec.name))
            except Exception:  # noqa: BLE001 - teardown goes on; the lab's own teardown destroys the rest
                pass
        if mode.name == "bridged":
            _host_ip(vm_lab, "link", "del", mode.bridge)
        else:
            sh("ip", "-n", outside.netns, "route", "del", f"{mode.addr(0)}/24")


def add_guest(vm_lab: VmLab, netns_factory, mode: Mode, last: int) -> tuple[Place, str]:
    """A guest's vNIC stand-in: a veth whose host end is a port of the network's bridge."""
    guest = netns_factory()
    port = f"vg{uuid.uuid4().hex[:6]}"
    _host_ip(vm_lab, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", guest.name)
    _host_ip(vm_lab, "link", "set", port, "master", mode.bridge, "up")
    guest.ip("addr", "add", f"{mode.addr(last)}/24", "dev", "eth0")
    guest.ip("link", "set", "eth0", "up")
    guest.ip("route", "add", "default", "via", mode.addr(1))
    return Place(guest.name, mode.addr(last), Listener(guest.name, PORT)), port


def wait_forwarding(vm_lab: VmLab, ports: list[str], timeout_s: float = 30.0) -> None:
    """libvirt's bridges run STP: a new port listens and learns (~4 s) before it forwards, for a vnet tap too."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {p["ifname"]: p.get("state") for p in json.loads(sh("bridge", "-n", vm_lab.netns, "-j", "link"))}
        if all(states.get(port) == "forwarding" for port in ports):
            return
        assert time.monotonic() < deadline, f"bridge ports not forwarding after {timeout_s} s: {states}"
        time.sleep(0.2)


@pytest.fixture
def guests(vm_lab, netns_factory, network) -> Iterator[tuple[Place, Place]]:
    (g1, p1), (g2, p2) = add_guest(vm_lab, netns_factory, network, 10), add_guest(vm_lab, netns_factory, network, 11)
    pair = (g1, g2)
    wait_forwarding(vm_lab, [p1, p2])
    yield pair
    for g in pair:
        g.listener.close()


@pytest.mark.parametrize("network", list(MODES), indirect=True)
def test_connectivity_matches_seed_003(network: Mode, guests, outside):
    g1, g2 = guests
    to_host = seen_as(g1.netns, network.addr(1), PORT)
    to_guest = seen_as(g1.netns, g2.address, PORT)
    to_outside = seen_as(g1.netns, outside.address if network.name != "bridged" else network.addr(200), PORT)
    from_outside = seen_as(outside.netns, g1.address, PORT)
    row = tuple(seen is not None for seen in (to_host, to_guest, to_outside, from_outside))
    assert row == TABLE[network.name]
    assert to_guest == g1.address  # guests on one virtual network meet directly
    if network.name == "nat":  # masquerade: the outside sees the host's address, never the guest's
        assert to_outside == LAB_HOST_ADDRESS
    elif to_outside is not None:
        assert to_outside == g1.address
