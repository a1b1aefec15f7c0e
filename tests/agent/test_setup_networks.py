"""setupNetworks on the real kernel: a lab host whose NICs are veths plugged into a switch namespace.

Each test reads the host back with iproute2 (`ip -j`), independently of the
agent's pyroute2 code, and compares normalised states (agent.net.apply.snapshot)
where it promises "exactly as before".
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyroute2 import IPRoute

from agent.net.apply import snapshot
from agent.net.apply.transaction import ApplyFailed, SimulatedCrash, recover_from_journal
from agent.net.hostnet.changes import HostNetworks
from agent.net.report.capabilities import kernel_features
from agent.net.report.state import read_state
from virtfleet.errors import FailedPrecondition, InvalidArgument
from tests.fixtures.netns import Namespace
from virtfleet.v1 import hostnet_pb2

pytestmark = pytest.mark.lab


class Host:
    """A lab host with NICs eth0..eth3; eth0 holds 192.0.2.11/24 and the default route."""

    def __init__(self, ns: Namespace, ipr: IPRoute, state_dir: pathlib.Path) -> None:
        self.ns, self.ipr, self.state_dir = ns, ipr, state_dir
        self.lock = threading.Lock()
        self.networks = self.agent()

    def agent(self) -> HostNetworks:
        """A (re)started agent's network service over this host's state directory."""
        return HostNetworks(self.ipr, self.lock, journal_path=self.journal, config_path=self.state_dir / "netconfig.json",
                            features=lambda: kernel_features(self.ipr))

    @property
    def journal(self) -> pathlib.Path:
        return self.state_dir / "netjournal.json"

    def setup(self, **request: Any) -> hostnet_pb2.SetupNetworksResponse:
        seams = {k: request.pop(k) for k in ("fail_at", "crash_at") if k in request}
        return self.networks.setup(hostnet_pb2.SetupNetworksRequest(**request), **seams)

    def normalised(self) -> snapshot.Snapshot:
        """Every link's configuration as an admin set it (no indexes, counters, lifetimes)."""
        self.ns.settle()
        state = read_state(self.ipr)
        return snapshot.take(state, [link.name for link in state.links])

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in self.ns.ip_json("addr", "show")}

    def inet(self, name: str) -> list[str]:
        return [f"{a['local']}/{a['prefixlen']}" for a in self.links()[name]["addr_info"] if a["family"] == "inet"]

    def default_route(self) -> list[tuple[str, str]]:
        return [(r.get("gateway", ""), r["dev"]) for r in self.ns.ip_json("route", "show", "default")]


@pytest.fixture
def host(netns_factory: Any, tmp_path: pathlib.Path) -> Iterator[Host]:
    ns, switch = netns_factory(), netns_factory()
    switch.ip("link", "add", "sw", "type", "bridge")
    switch.ip("link", "set", "sw", "up")
    for i in range(4):
        ns.ip("link", "add", f"eth{i}", "type", "veth", "peer", "name", f"port{i}", "netns", switch.name)
        switch.ip("link", "set", f"port{i}", "master", "sw", "up")
        ns.ip("link", "set", f"eth{i}", "up")
    ns.ip("addr", "add", "192.0.2.11/24", "brd", "+", "dev", "eth0")
    ns.ip("route", "add", "default", "via", "192.0.2.1")
    ns.ip("route", "add", "10.50.0.0/16", "via", "192.0.2.1", "proto", "static")
    with ns.iproute() as ipr:
        yield Host(ns, ipr, tmp_path / "state")


def static(address: str, prefix: int = 24, gateway: str = "") -> hostnet_pb2.Ipv4Config:
    return hostnet_pb2.Ipv4Config(method="static", address=address, prefixlen=prefix, gateway=gateway)


BLUE = hostnet_pb2.NetworkAttachment(network="blue", nic="eth1", bridged=True, mtu=1400, ipv4=static("198.51.100.5"))
STORAGE = hostnet_pb2.NetworkAttachment(network="storage", nic="eth2", mtu=9000, ipv4=static("203.0.113.5"))


def test_bridged_and_bridgeless_networks_are_built_and_removed(host: Host) -> None:
    before = host.normalised()
    reply = host.setup(networks=[BLUE, STORAGE])
    links = host.links()
    assert links["blue"]["mtu"] == 1400 and "UP" in links["blue"]["flags"]
    assert links["eth1"]["master"] == "blue"
    assert host.inet("blue") == ["198.51.100.5/24"]
    assert links["eth2"]["mtu"] == 9000 and host.inet("eth2") == ["203.0.113.5/24"]
    assert [n.network for n in reply.config.networks] == ["blue", "storage"]
    assert reply.steps[0].startswith("ip link set eth1 mtu 1400")

    host.setup(remove_networks=["blue", "storage"])
    assert "blue" not in host.links()
    assert host.normalised() == before


def test_an_address_moves_from_the_nic_onto_the_bridge_with_the_default_route(host: Host) -> None:
    moved = hostnet_pb2.NetworkAttachment(network="ovirtmgmt", nic="eth0", bridged=True,
                                          ipv4=static("192.0.2.11", 24, "192.0.2.1"), default_route=True)
    host.setup(networks=[moved])
    assert host.inet("ovirtmgmt") == ["192.0.2.11/24"]
    assert host.inet("eth0") == []
    assert host.links()["eth0"]["master"] == "ovirtmgmt"
    assert host.default_route() == [("192.0.2.1", "ovirtmgmt")]
    assert host.ns.ip_json("route", "show", "10.50.0.0/16")[0]["dev"] == "ovirtmgmt"


def test_mtu_of_a_network_changes_in_place(host: Host) -> None:
    host.setup(networks=[BLUE])
    index = host.links()["blue"]["ifindex"]
    for mtu in (9000, 1280):
        host.setup(networks=[hostnet_pb2.NetworkAttachment(network="blue", nic="eth1", bridged=True, mtu=mtu,
                                                           ipv4=static("198.51.100.5"))])
        links = host.links()
        assert (links["blue"]["mtu"], links["eth1"]["mtu"]) == (mtu, mtu)
        assert links["blue"]["ifindex"] == index  # the same bridge: VMs on it keep their ports


def test_the_same_request_twice_changes_nothing_the_second_time(host: Host) -> None:
    host.setup(networks=[BLUE, STORAGE])
    assert host.setup(networks=[BLUE, STORAGE]).steps == []


def test_dry_run_returns_the_steps_and_changes_nothing(host: Host) -> None:
    before = host.normalised()
    reply = host.setup(networks=[BLUE], dry_run=True)
    assert "ip link add blue" in reply.steps[1]
    assert host.normalised() == before
    assert host.networks.config == hostnet_pb2.HostNetworkConfig()


def test_invalid_request_changes_nothing(host: Host) -> None:
    before = host.normalised()
    with pytest.raises(InvalidArgument) as err:
        host.setup(networks=[BLUE, hostnet_pb2.NetworkAttachment(network="bad", nic="eth1", vlan=5000)])
    assert err.value.field == "networks[1].vlan"
    assert host.normalised() == before


@pytest.mark.parametrize("change", ["add", "remove"])
def test_a_failure_at_every_step_leaves_the_host_as_before(host: Host, change: str) -> None:
    moved = hostnet_pb2.NetworkAttachment(network="ovirtmgmt", nic="eth0", bridged=True,
                                          ipv4=static("192.0.2.11", 24, "192.0.2.1"), default_route=True)
    request = {"networks": [moved, BLUE, STORAGE]}
    if change == "remove":
        host.setup(**request)
        request = {"remove_networks": ["ovirtmgmt", "blue", "storage"]}
    before = host.normalised()
    steps = host.setup(dry_run=True, **request).steps
    assert len(steps) >= 8
    for position in range(len(steps)):  # verification failing is its own test below
        with pytest.raises(ApplyFailed, match="rolled back"):
            host.setup(fail_at=position, **request)
        assert host.normalised() == before, f"after a failure at step {position}"
        assert not host.journal.exists()


def test_a_crash_at_every_step_is_undone_from_the_journal(host: Host) -> None:
    request = {"networks": [BLUE, STORAGE]}
    before = host.normalised()
    count = len(host.setup(dry_run=True, **request).steps)
    for position in range(count + 1):
        with pytest.raises(SimulatedCrash):
            host.setup(crash_at=position, **request)
        assert recover_from_journal(host.ipr, host.journal)
        assert host.normalised() == before, f"after a crash at step {position}"


def test_verification_failure_is_reported_with_the_difference(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.net.hostnet import apply

    before = host.normalised()
    monkeypatch.setattr(apply, "verify", lambda *a: ["network blue: blue mtu: expected 1400, found 1500"])
    with pytest.raises(ApplyFailed) as err:
        host.setup(networks=[BLUE])
    assert "blue mtu: expected 1400, found 1500" in err.value.diff
    assert host.normalised() == before


def _wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_change_not_committed_in_time_is_rolled_back(host: Host) -> None:
    before = host.normalised()
    reply = host.setup(networks=[BLUE], connectivity_timeout_s=1)
    assert reply.change_id and "blue" in host.links()
    with pytest.raises(FailedPrecondition, match="awaits CommitNetworks"):
        host.setup(networks=[STORAGE])
    _wait_until(lambda: not host.journal.exists())
    assert host.normalised() == before
    assert host.networks.config == hostnet_pb2.HostNetworkConfig()
    with pytest.raises(FailedPrecondition, match="rolled back"):
        host.networks.commit(reply.change_id)


def test_a_committed_change_stays_and_is_saved(host: Host) -> None:
    reply = host.setup(networks=[BLUE], connectivity_timeout_s=2)
    saved = host.networks.commit(reply.change_id)
    assert [n.network for n in saved.networks] == ["blue"]
    assert not host.journal.exists()
    time.sleep(2.5)  # past the timeout: the timer must have been cancelled
    assert host.links()["eth1"]["master"] == "blue"
    assert [n.network for n in host.agent().config.networks] == ["blue"]


def test_saved_networks_are_restored_onto_a_rebooted_host(host: Host) -> None:
    host.setup(networks=[BLUE, STORAGE])
    built = host.normalised()
    # A reboot: the kernel forgets everything the agent made.
    host.ns.ip("link", "del", "blue")
    host.ns.ip("addr", "flush", "dev", "eth2")
    host.ns.ip("link", "set", "eth1", "mtu", "1500")
    host.ns.ip("link", "set", "eth2", "mtu", "1500")
    result = host.agent().restore()
    assert result is not None and result.changed
    restored = host.normalised()
    assert {k: {f: v for f, v in link.items() if f != "mac"} for k, link in restored.items()} == \
        {k: {f: v for f, v in link.items() if f != "mac"} for k, link in built.items()}


def test_nothing_saved_means_nothing_restored(host: Host) -> None:
    assert host.agent().restore() is None


def test_bond_and_vlan_networks_on_the_kernel(host: Host) -> None:
    features = kernel_features(host.ipr)
    missing = [m for kind, m in (("bond", "bonding"), ("vlan", "8021q")) if kind not in features]
    if missing:
        with pytest.raises(FailedPrecondition, match=missing[0]):
            host.setup(bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth2", "eth3"], mode="1")] if "bonding" in missing else [],
                       networks=[hostnet_pb2.NetworkAttachment(network="v", nic="eth1", vlan=10)])
        pytest.skip(f"this kernel lacks {' and '.join(missing)}: bonds and VLANs are refused (checked), not built")
    before = host.normalised()
    host.setup(bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth2", "eth3"], mode="1", options={"miimon": "100"})],
               networks=[hostnet_pb2.NetworkAttachment(network="vm", nic="bond0", vlan=10, bridged=True)])
    links = host.links()
    assert links["eth2"]["master"] == "bond0" and links["bond0.10"]["master"] == "vm"
    host.setup(remove_networks=["vm"], remove_bonds=["bond0"])
    assert host.normalised() == before


def test_a_kernel_refusal_inside_a_batch_is_rolled_back_exactly(host: Host) -> None:
    """Steps go to the kernel many per write; a refusal mid-write still restores every touched link."""
    from agent.net.apply import batch, transaction
    from agent.net.apply.operations import AddBridge, DeleteLink, SetMaster, SetMtu, SetUp, Step

    before = host.normalised()
    current = read_state(host.ipr)
    steps = [
        Step(AddBridge("b1", "", 1500), DeleteLink("b1")),
        Step(SetMaster("eth1", "b1"), SetMaster("eth1", "")),
        Step(SetMtu("eth2", 9000), SetMtu("eth2", 1500)),
        Step(SetMtu("eth3", 20), SetMtu("eth3", 1500)),  # below any link's minimum: refused
        Step(SetUp("b1", True), SetUp("b1", False)),
    ]
    writer = batch.for_socket(host.ipr, {link.name: link.index for link in current.links})
    try:
        with pytest.raises(ApplyFailed, match=r"ip link set eth3 mtu 20 failed .*Invalid argument.*rolled back"):
            transaction.execute(host.ipr, steps, touched=["b1", "eth1", "eth2", "eth3"], verify=lambda: [],
                                journal_path=host.journal, run=writer.run)
    finally:
        writer.close()
    assert host.normalised() == before


def test_no_rollback_keeps_a_failed_change_for_diagnosis(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.net.hostnet import apply

    monkeypatch.setattr(apply, "verify", lambda *a: ["network blue: blue mtu: expected 1400, found 1500"])
    with pytest.raises(ApplyFailed, match="left as it is"):
        host.setup(networks=[BLUE], no_rollback=True)
    assert host.links()["eth1"]["master"] == "blue"
    assert host.networks.config == hostnet_pb2.HostNetworkConfig()  # not saved: not what was asked
