"""SetupNetworks, CommitNetworks and GetNetworkConfig over mutual-TLS gRPC, with the agent as its own process.

The agent runs inside a lab host's namespace (`ip netns exec`), so killing it
with SIGKILL and starting it again is what a crashed or rebooted host does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.fixtures.agent_process import host_pki
from tests.fixtures.netns import Namespace, plug_nics
from virtfleet.rpc import field_violations
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, hostnet_pb2

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs in a network namespace (root)")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pki")
    return {"root": root, "manager": host_pki(root)}


class Agent:
    """One lab host (NICs eth0..eth2 plugged into a switch namespace) and its agent process."""

    def __init__(self, ns: Namespace, pki: dict[str, Any], state_dir: Path) -> None:
        self.ns, self.pki, self.state_dir = ns, pki, state_dir
        self.sock = state_dir.parent / "agent.sock"
        self.proc: subprocess.Popen | None = None
        self.channel: grpc.Channel | None = None

    def start(self) -> None:
        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "agent.main", "--listen", f"unix://{self.sock}",
             "--pki-dir", str(self.pki["root"] / "agent"), "--state-dir", str(self.state_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "agent did not start"
            time.sleep(0.02)
        self.channel = grpc.secure_channel(f"unix://{self.sock}", self.pki["manager"].channel_credentials(),
                                           options=[("grpc.ssl_target_name_override", "host1")])
        self.stub = agent_pb2_grpc.AgentServiceStub(self.channel)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.proc is not None and self.proc.poll() is None:
            # `ip netns exec` execs the agent, so this pid is the agent itself.
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def setup(self, **request: Any) -> hostnet_pb2.SetupNetworksResponse:
        return self.stub.SetupNetworks(hostnet_pb2.SetupNetworksRequest(**request), timeout=30)

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in self.ns.ip_json("addr", "show")}


@pytest.fixture
def agent(netns_factory: Any, pki: dict[str, Any], tmp_path: Path) -> Iterator[Agent]:
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 3)
    agent = Agent(ns, pki, tmp_path / "state")
    agent.start()
    try:
        yield agent
    finally:
        agent.stop(signal.SIGKILL)


BLUE = hostnet_pb2.NetworkAttachment(network="blue", nic="eth1", bridged=True, mtu=1400,
                                     ipv4=hostnet_pb2.Ipv4Config(method="static", address="198.51.100.5", prefixlen=24))
RED = hostnet_pb2.NetworkAttachment(network="red", nic="eth2", bridged=True)


def test_setup_networks_builds_the_bridge_and_saves_the_config(agent: Agent) -> None:
    reply = agent.setup(networks=[BLUE])
    assert not reply.change_id
    assert "ip link add blue" in "\n".join(reply.steps)
    assert agent.links()["eth1"]["master"] == "blue"
    assert any(link.name == "blue" for link in reply.state.links)
    config = agent.stub.GetNetworkConfig(hostnet_pb2.GetNetworkConfigRequest(), timeout=10)
    assert [n.network for n in config.networks] == ["blue"]


def test_a_bad_request_is_invalid_argument_naming_the_field(agent: Agent) -> None:
    with pytest.raises(grpc.RpcError) as err:
        agent.setup(networks=[hostnet_pb2.NetworkAttachment(network="blue", nic="eth1", vlan=4095)])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("networks[0].vlan: ")
    assert [field for field, _ in field_violations(err.value)] == ["networks[0].vlan"]
    assert "blue" not in agent.links()


def test_a_bad_management_nic_is_invalid_argument_naming_the_field(agent: Agent) -> None:
    before = agent.links()
    with pytest.raises(grpc.RpcError) as err:
        agent.stub.SetupManagementNetwork(agent_pb2.SetupManagementNetworkRequest(nic="eth9"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(err.value)
    assert field == "nic" and "eth9" in description
    assert agent.links() == before


def test_a_bond_without_kernel_bonding_is_failed_precondition(agent: Agent) -> None:
    if "bond" in agent.stub.GetCapabilities(agent_pb2.GetCapabilitiesRequest(), timeout=10).kernel_features:
        pytest.skip("this kernel has bonding: the refusal cannot be shown here")
    with pytest.raises(grpc.RpcError) as err:
        agent.setup(bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth1", "eth2"], mode="1")])
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "bonding" in err.value.details()


def test_two_phase_change_waits_for_its_commit(agent: Agent) -> None:
    reply = agent.setup(networks=[BLUE], connectivity_timeout_s=60)
    assert reply.change_id
    with pytest.raises(grpc.RpcError) as err:
        agent.setup(networks=[RED])
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:  # it would overwrite the pending change's journal
        agent.stub.SetupManagementNetwork(agent_pb2.SetupManagementNetworkRequest(nic="eth0"), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    committed = agent.stub.CommitNetworks(hostnet_pb2.CommitNetworksRequest(change_id=reply.change_id), timeout=10)
    assert [n.network for n in committed.config.networks] == ["blue"]
    agent.setup(networks=[RED])  # the next change may go now
    assert agent.links()["eth2"]["master"] == "red"


def test_agent_killed_while_a_change_is_pending_rolls_it_back_at_start(agent: Agent) -> None:
    agent.setup(networks=[BLUE])  # committed: must survive
    reply = agent.setup(networks=[RED], connectivity_timeout_s=600)
    assert reply.change_id and agent.links()["eth2"].get("master") == "red"
    agent.stop(signal.SIGKILL)
    agent.start()
    links = agent.links()
    assert "red" not in links and "master" not in links["eth2"]
    assert links["eth1"]["master"] == "blue"
    config = agent.stub.GetNetworkConfig(hostnet_pb2.GetNetworkConfigRequest(), timeout=10)
    assert [n.network for n in config.networks] == ["blue"]


def test_committed_networks_come_back_after_a_reboot(agent: Agent) -> None:
    agent.setup(networks=[BLUE, RED])
    agent.stop()
    for bridge in ("blue", "red"):  # the reboot: the kernel forgets the agent's devices
        agent.ns.ip("link", "del", bridge)
    agent.ns.ip("link", "set", "eth1", "mtu", "1500")
    agent.start()
    links = agent.links()
    assert links["eth1"]["master"] == "blue" and links["eth2"]["master"] == "red"
    assert links["blue"]["mtu"] == 1400
    assert [a["local"] for a in links["blue"]["addr_info"] if a["family"] == "inet"] == ["198.51.100.5"]
