"""SIGKILL the real agent at every named crash point of a host network change; the host is before or after.

For each point (agent.net.crashpoints) the agent process is started armed at
it (virtfleet.failpoints), sent a change, and dies by SIGKILL there. Started
again unarmed, it must leave the host exactly in the state before the change
or exactly in the state after it (`ip -j` in the namespace, normalised), its
saved configuration (GetNetworkConfig, with its generation) must say which, and
no probe device or journal may be left. "After" is not taken from the host
under test: a twin host gets the same change in this process, and the two
are compared with every MAC replaced by the name of the NIC that owned it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent.net import crashpoints
from agent.net.hostnet import persistence
from agent.net.hostnet.changes import HostNetworks
from agent.net.report.capabilities import kernel_features
from tests.fixtures.agent_process import host_pki
from tests.fixtures.netns import Namespace, plug_nics
from virtfleet import failpoints
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, hostnet_pb2

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs in a network namespace (root)")]

BLUE = hostnet_pb2.NetworkAttachment(network="blue", nic="eth1", bridged=True, mtu=1400,
                                     ipv4=hostnet_pb2.Ipv4Config(method="static", address="198.51.100.5", prefixlen=24))
RED = hostnet_pb2.NetworkAttachment(network="red", nic="eth2", bridged=True, mtu=9000, default_route=True,
                                    ipv4=hostnet_pb2.Ipv4Config(method="static", address="203.0.113.5", prefixlen=24,
                                                                gateway="203.0.113.1"))
# Before: blue on eth1 (MTU 1400 taken from 1500). The change gives eth1 back its MTU, and takes eth2
# to 9000 with an address and the default route: originals matter on both sides.
CHANGE = hostnet_pb2.SetupNetworksRequest(networks=[RED], remove_networks=["blue"])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pki")
    return {"root": root, "manager": host_pki(root)}


@dataclass
class World:
    """A lab host (eth0..eth2 to a switch; eth0 holds 192.0.2.11/24 and the default route) and its state dir."""

    ns: Namespace
    state_dir: Path

    @property
    def journal(self) -> Path:
        return self.state_dir / "netjournal.json"

    def networks(self, ipr: Any) -> HostNetworks:
        """The agent's network service run in this process (to prepare a host, or to make a twin's after-state)."""
        import threading

        return HostNetworks(ipr, threading.Lock(), journal_path=self.journal,
                            config_path=self.state_dir / "netconfig.json", features=lambda: kernel_features(ipr))

    def state(self) -> dict[str, Any]:
        """The host as `ip -j` shows it, normalised: no indexes, counters, carrier or lifetimes; MACs by owner."""
        self.ns.settle()
        links = self.ns.ip_json("-d", "addr", "show")
        owners = {link["address"]: link["ifname"] for link in links if link["ifname"].startswith("eth")}
        normal = {}
        for link in links:
            normal[link["ifname"]] = {
                "kind": link.get("linkinfo", {}).get("info_kind", ""),
                "mac": owners.get(link.get("address", ""), "own"),
                "mtu": link["mtu"],
                "up": "UP" in link["flags"],
                "master": link.get("master", ""),
                "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                               if a["family"] == "inet" or a.get("scope") != "link"),
            }
        routes = sorted(f"{r['dst']} via {r.get('gateway', '-')} dev {r['dev']} proto {r.get('protocol', '-')}"
                        f" metric {r.get('metric', 0)}" for r in self.ns.ip_json("route", "show", "table", "main"))
        return {"links": normal, "routes": routes}


@pytest.fixture
def make_world(netns_factory: Callable[[], Namespace], tmp_path: Path) -> Callable[[], World]:
    count = 0

    def make() -> World:
        nonlocal count
        count += 1
        host, switch = netns_factory(), netns_factory()
        plug_nics(host, switch, 3)
        host.ip("addr", "add", "192.0.2.11/24", "dev", "eth0")
        host.ip("route", "add", "default", "via", "192.0.2.1", "dev", "eth0")
        return World(host, tmp_path / f"state{count}")

    return make


class AgentProcess:
    """The agent as its own process in the world's namespace; `armed` names the crash point it dies at."""

    def __init__(self, world: World, pki: dict[str, Any], armed: str | None = None, *, wait: bool = True) -> None:
        self.sock = world.state_dir.parent / f"{world.state_dir.name}.sock"
        self.sock.unlink(missing_ok=True)
        env = failpoints.arm(dict(os.environ), armed) if armed else {k: v for k, v in os.environ.items()
                                                                      if k != failpoints.ENV}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", world.ns.name, sys.executable, "-m", "agent.main", "--listen", f"unix://{self.sock}",
             "--pki-dir", str(pki["root"] / "agent"), "--state-dir", str(world.state_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        self.channel = grpc.secure_channel(f"unix://{self.sock}", pki["manager"].channel_credentials(),
                                           options=[("grpc.ssl_target_name_override", "host1")])
        self.stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        if not wait:
            return
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "agent did not start"
            time.sleep(0.02)

    def killed(self, call: Callable[[], Any]) -> None:
        """`call` dies with the agent: the reply is lost (UNAVAILABLE) and the process ends by SIGKILL."""
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        self.died()

    def died(self) -> None:
        assert self.proc.wait(timeout=60) == -signal.SIGKILL, self.proc.stderr.read().decode()[-2000:]
        self.channel.close()

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


@dataclass
class Outcome:
    state: dict[str, Any]
    networks: list[str]
    generation: int
    originals: dict[str, Any]  # what each NIC was before the agent took it, saved with the configuration


def prepare(world: World, request: hostnet_pb2.SetupNetworksRequest | None) -> Outcome:
    """Bring a fresh world to its before-state with the agent's own code, in this process."""
    with world.ns.iproute() as ipr:
        networks = world.networks(ipr)
        if request is not None:
            networks.setup(request)
        config = networks.config
    return Outcome(world.state(), [n.network for n in config.networks], config.generation, _originals(world))


def _originals(world: World) -> dict[str, Any]:
    return persistence.load(world.state_dir / "netconfig.json").originals


def twin_after(make_world: Callable[[], World], before: hostnet_pb2.SetupNetworksRequest | None,
               change: Callable[[HostNetworks], Any]) -> Outcome:
    """What the change makes of a fresh twin host, applied without any crash."""
    twin = make_world()
    prepare(twin, before)
    with twin.ns.iproute() as ipr:
        networks = twin.networks(ipr)
        change(networks)
        config = networks.config
    return Outcome(twin.state(), [n.network for n in config.networks], config.generation, _originals(twin))


def check_restart(world: World, pki: dict[str, Any], before: Outcome, after: Outcome) -> str:
    """Start the agent unarmed: the host is before or after, its saved configuration says which; nothing stray."""
    agent = AgentProcess(world, pki)
    try:
        state = world.state()
        config = agent.stub.GetNetworkConfig(hostnet_pb2.GetNetworkConfigRequest(), timeout=10)
        features = agent.stub.GetCapabilities(agent_pb2.GetCapabilitiesRequest(), timeout=10)  # probes again
    finally:
        agent.stop()
    assert state in (before.state, after.state), f"half-changed host:\n{state}\nbefore: {before.state}\nafter: {after.state}"
    which = before if state == before.state else after
    assert ([n.network for n in config.networks], config.generation) == (which.networks, which.generation)
    assert _originals(world) == which.originals  # e.g. eth2's MTU of 1500, to give back when red goes
    assert not [name for name in state["links"] if name.startswith("vfprobe")]
    assert features.kernel_features
    assert not world.journal.exists()
    return "before" if which is before else "after"


def _setup(agent: AgentProcess, **extra: Any) -> Any:
    request = hostnet_pb2.SetupNetworksRequest()
    request.CopyFrom(CHANGE)
    for key, value in extra.items():
        setattr(request, key, value)
    return agent.stub.SetupNetworks(request, timeout=60)


@pytest.mark.parametrize("point", crashpoints.CHANGE_POINTS)
def test_one_phase_change_killed_at_each_point(point: str, make_world: Callable[[], World], pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]))
    after = twin_after(make_world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]), lambda n: n.setup(CHANGE))
    assert before.state != after.state and after.originals["eth2"]["mtu"] == 1500
    agent = AgentProcess(world, pki, armed=point)
    agent.killed(lambda: _setup(agent))
    side = check_restart(world, pki, before, after)
    # Up to the save of the new configuration the change is undone; from it on, it is kept.
    saved_from = crashpoints.CHANGE_POINTS.index(crashpoints.CONFIG_SAVED)
    assert side == ("after" if crashpoints.CHANGE_POINTS.index(point) >= saved_from else "before")


@pytest.mark.parametrize("point", [crashpoints.KERNEL_HALF, crashpoints.CONFIG_SAVING, crashpoints.CONFIG_SAVED,
                                   crashpoints.JOURNAL_REMOVED])
def test_two_phase_change_killed_at_setup_or_commit(point: str, make_world: Callable[[], World],
                                                    pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]))
    after = twin_after(make_world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]), lambda n: n.setup(CHANGE))
    agent = AgentProcess(world, pki, armed=point)
    if point == crashpoints.KERNEL_HALF:
        agent.killed(lambda: _setup(agent, connectivity_timeout_s=60))
    else:
        change_id = _setup(agent, connectivity_timeout_s=60).change_id
        agent.killed(lambda: agent.stub.CommitNetworks(hostnet_pb2.CommitNetworksRequest(change_id=change_id),
                                                       timeout=30))
    side = check_restart(world, pki, before, after)
    assert side == ("after" if point in (crashpoints.CONFIG_SAVED, crashpoints.JOURNAL_REMOVED) else "before")


def test_rollback_timer_killed_halfway(make_world: Callable[[], World], pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]))
    after = twin_after(make_world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]), lambda n: n.setup(CHANGE))
    agent = AgentProcess(world, pki, armed=crashpoints.UNDO_HALF)
    assert _setup(agent, connectivity_timeout_s=1).change_id  # never committed: the timer undoes it, and dies halfway
    agent.died()
    assert check_restart(world, pki, before, after) == "before"


def test_feature_probe_killed_at_the_first_call_leaves_no_device(make_world: Callable[[], World],
                                                                  pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, None)  # nothing to restore: the first probe comes with the first call
    after = twin_after(make_world, None, lambda n: n.setup(hostnet_pb2.SetupNetworksRequest(networks=[RED])))
    agent = AgentProcess(world, pki, armed=crashpoints.PROBE_CREATED)
    agent.killed(lambda: agent.stub.SetupNetworks(hostnet_pb2.SetupNetworksRequest(networks=[RED], dry_run=True),
                                                  timeout=60))  # even a plan probes first
    assert any(name.startswith("vfprobe") for name in world.state()["links"])  # what the kill left
    assert check_restart(world, pki, before, after) == "before"


def test_feature_probe_killed_while_restoring_at_start(make_world: Callable[[], World], pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, hostnet_pb2.SetupNetworksRequest(networks=[BLUE]))
    world.ns.ip("link", "del", "blue")  # as after a reboot: the agent restores it at start, probing first
    agent = AgentProcess(world, pki, armed=crashpoints.PROBE_CREATED, wait=False)
    agent.died()
    assert any(name.startswith("vfprobe") for name in world.state()["links"])
    assert check_restart(world, pki, before, before) == "before"


@pytest.mark.parametrize("point", [crashpoints.KERNEL_HALF, crashpoints.CONFIG_SAVED])
def test_management_network_killed(point: str, make_world: Callable[[], World], pki: dict[str, Any]) -> None:
    world = make_world()
    before = prepare(world, None)
    after = twin_after(make_world, None, lambda n: n.setup_management("eth0", "ovirtmgmt"))
    agent = AgentProcess(world, pki, armed=point)
    agent.killed(lambda: agent.stub.SetupManagementNetwork(agent_pb2.SetupManagementNetworkRequest(nic="eth0"),
                                                            timeout=60))
    side = check_restart(world, pki, before, after)
    assert side == ("after" if point == crashpoints.CONFIG_SAVED else "before")
