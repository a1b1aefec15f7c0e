"""A change whose reply died with the agent is recorded as the agent has it, at the agent's next report.

The rule on its own (which outcome a report means, what the record becomes),
then a real manager and a real agent process killed by a failpoint after it
saved the change (the host has it: the manager records it) or before (the
host does not: the record stands).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from agent.net import crashpoints
from manager.service.lostreplies import Note, Outcome, Position, decide, mirror
from manager.store.networks import AttachmentRecord, NetworkRecord
from tests.fixtures.lab import eventually
from tests.fixtures.netns import plug_nics
from virtfleet import failpoints
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import fleet_pb2, hostnet_pb2


def _note(*networks: str, at: Position | None = Position("e1", 3)) -> Note:
    return Note(at, frozenset(networks), frozenset())


def test_a_moved_generation_means_read_the_agents_configuration() -> None:
    assert decide(_note("red"), Position("e2", 4)) is Outcome.READ
    assert decide(_note("red"), Position("e1", 4)) is Outcome.READ  # the same agent saved it after the deadline


def test_a_restart_without_a_save_means_the_change_was_not_made() -> None:
    assert decide(_note("red"), Position("e2", 3)) is Outcome.UNCHANGED


def test_the_same_agent_without_a_save_may_still_be_working() -> None:
    assert decide(_note("red"), Position("e1", 3)) is Outcome.WAIT


def test_an_unknown_position_is_settled_by_reading() -> None:
    assert decide(_note("red", at=None), Position("e1", 3)) is Outcome.READ


NETS = {name: NetworkRecord(i, name, "Default", None, 1500, True, "") for i, name in enumerate(["blue", "red", "green"])}


def test_the_touched_names_become_what_the_agent_has() -> None:
    config = hostnet_pb2.HostNetworkConfig(generation=4, networks=[
        hostnet_pb2.NetworkAttachment(network="red", nic="eth2", ipv4=hostnet_pb2.Ipv4Config(
            method="static", address="203.0.113.5", prefixlen=24)),
        hostnet_pb2.NetworkAttachment(network="green", nic="eth0"),  # not touched: left to the audit
    ])
    change = mirror(_note("red", "blue"), config, NETS, recorded=["blue", "green"], recorded_bonds=[])
    assert change.upsert == [(NETS["red"], AttachmentRecord("red", "eth2", "static", "203.0.113.5", 24, None, False))]
    assert change.detach == [NETS["blue"]]
    assert not change.bonds_upsert and not change.bonds_remove


# -- a real manager and agent --------------------------------------------------------------------------


class ArmedHost:
    """host1 enrolled with the manager; its agent process started armed at a crash point or not."""

    def __init__(self, manager, ns: str, root: Path) -> None:
        self.ns, self.root, self.sock = ns, root, root / "agent.sock"
        key, csr = make_key_and_csr("host1")
        enrolled = manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(
            name="host1", address="192.0.2.11", csr_pem=csr, endpoint=f"unix://{self.sock}"))
        TlsMaterial(enrolled.ca_certificate_pem, enrolled.certificate_pem, key).save(root / "pki")
        self.proc: subprocess.Popen | None = None

    def start(self, armed: str | None = None) -> None:
        self.sock.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "agent.main", "--listen", f"unix://{self.sock}",
             "--pki-dir", str(self.root / "pki"), "--state-dir", str(self.root / "state")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=failpoints.arm(env, armed) if armed else env)
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "agent did not start"
            time.sleep(0.02)


@pytest.fixture
def host(manager, netns_factory) -> Iterator[ArmedHost]:
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 3)
    root = Path(tempfile.mkdtemp(prefix="vft-agent-"))  # short: a unix socket path has 107 bytes
    armed = ArmedHost(manager, ns.name, root)
    try:
        yield armed
    finally:
        if armed.proc is not None and armed.proc.poll() is None:
            armed.proc.send_signal(signal.SIGTERM)
            armed.proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def _recorded(manager) -> list[str]:
    view = manager.fleet.GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host="host1"), timeout=10)
    return [n.network for n in view.networks if n.in_sync]


@pytest.mark.parametrize("point, made", [(crashpoints.CONFIG_SAVED, True), (crashpoints.JOURNAL_WRITTEN, False)])
def test_a_change_whose_reply_was_lost_is_recorded_as_the_host_has_it(manager, host, point, made) -> None:
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="red")))
    host.start(armed=point)
    assert eventually(lambda: manager.app.monitor.current("host1"))  # the manager follows the host's report
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", attach=[
            fleet_pb2.HostAttachment(network="red", nic="eth2", ipv4=hostnet_pb2.Ipv4Config(
                method="static", address="203.0.113.5", prefixlen=24))]), timeout=60)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "next report" in err.value.details()
    assert host.proc.wait(timeout=30) == -signal.SIGKILL
    assert _recorded(manager) == []

    host.start()  # as systemd would
    settled = eventually(lambda: manager.app.networks.lost_replies.pending("host1") is None and
                         _recorded(manager) == (["red"] if made else []), timeout_s=60)
    assert settled, (manager.app.networks.lost_replies.pending("host1"), _recorded(manager))
