"""Labels reach the hosts a label change could not: a host added with NIC labels, a host that was away.

The rules on their own (when a host counts as back, what it lacks), then a real
manager on a real PostgreSQL with real agent processes in network namespaces of
their own (three NICs each, plugged into a switch namespace):

- `host add --nic-label eth1=LAB` before the host exists: once its agent first
  reports, every network carrying the label is on that NIC;
- an agent stopped while a label changes gets the network when it runs again,
  with an event, and catching up again finds nothing to do;
- a change whose reply was lost, recorded at the agent's return, has the host
  judged again on its required networks;
- a network outside the host's (or VM's) cluster is refused, naming the field.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from agent.net import crashpoints
from manager.domain.labels import check_nic_labels, missing
from manager.service.labelcatchup import Heard, came_back
from manager.store.events import EventFilter
from tests.fixtures.agent_process import enroll_in_namespace, start_agent
from tests.fixtures.lab import eventually
from tests.fixtures.netns import plug_nics
from virtfleet import failpoints
from virtfleet.errors import InvalidArgument
from virtfleet.rpc import field_violations
from virtfleet.v1 import fleet_pb2, vms_pb2, vms_pb2_grpc

CLI = str(Path(sys.executable).with_name("virtfleet"))


# -- the rules -------------------------------------------------------------------------------------------


def test_a_host_is_back_when_first_heard_restarted_resnapshotted_or_silent_past_the_limit():
    assert came_back(None, Heard("e1", 5.0), 30.0)
    assert came_back(Heard("e1", 5.0), Heard("e2", 6.0), 30.0)            # another agent run
    assert came_back(Heard("e1", 5.0), Heard("e1", 40.0), 30.0)           # silent past the limit
    assert came_back(Heard("e1", 5.0), Heard("e1", 6.0), 30.0, snapshot=True)
    assert not came_back(Heard("e1", 5.0), Heard("e1", 15.0), 30.0)       # a heartbeat


def test_a_host_lacks_what_its_labels_ask_on_nics_it_reports_and_nothing_is_detached():
    nics = {"eth1": frozenset({"lab"}), "eth3": frozenset({"far"})}
    nets = {"green": frozenset({"lab"}), "blue": frozenset({"lab"}), "red": frozenset({"far"}),
            "kept": frozenset({"lab"})}
    todo = missing(nics, nets, attached={"kept": "eth2", "mine": "eth1"}, reported={"eth0", "eth1", "eth2"})
    assert todo.attach == [("blue", "eth1"), ("green", "eth1")]
    assert todo.detach == []
    assert todo.skipped == ["kept: attached on eth2 already", "red: the host reports no NIC eth3"]
    assert missing(nics, nets, attached={"blue": "eth1", "green": "eth1", "kept": "eth1"},
                   reported={"eth1"}).empty


@pytest.mark.parametrize("pairs, field", [
    ([("eth1", "lab"), ("eth/2", "far")], "nic_labels[1].nic"),
    ([("eth1", "not ok")], "nic_labels[0].label"),
    ([("eth1", "lab"), ("eth2", "lab")], "nic_labels[1].label"),
])
def test_labels_given_with_a_host_are_checked_naming_the_field(pairs, field):
    with pytest.raises(InvalidArgument) as err:
        check_nic_labels(pairs)
    assert err.value.field == field


# -- a real manager: refusals that change nothing ------------------------------------------------------


def _net(manager, name: str, vlan: int = 0) -> None:
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name, vlan=vlan)))


def _label(manager, network: str, label: str) -> fleet_pb2.LabelOutcome:
    return manager.fleet.LabelNetwork(fleet_pb2.LabelNetworkRequest(network=network, label=label), timeout=60)


def _rows(manager, *tables: str) -> list[tuple]:
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return [row for t in tables for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()]


def test_bad_labels_at_host_add_are_refused_naming_the_field_and_no_host_is_made(manager):
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name="host9", address="192.0.2.19", nic_labels=[
            fleet_pb2.NicLabel(nic="eth1", label="lab"), fleet_pb2.NicLabel(nic="eth2", label="bad label")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["nic_labels[1].label"]
    assert _rows(manager, "hosts", "host_nic_labels") == []


def test_a_network_outside_the_cluster_is_refused_for_hosts_and_vnics_and_nothing_changes(manager):
    _net(manager, "vmnet")
    manager.fleet.DetachNetworkFromCluster(fleet_pb2.DetachNetworkFromClusterRequest(network="vmnet",
                                                                                     cluster="Default"))
    manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name="host1", address="192.0.2.11",
                                                         endpoint="unix:///nonexistent/agent.sock"))
    vms = vms_pb2_grpc.VmServiceStub(manager.channel)
    before = _rows(manager, "host_network_attachments", "vms", "vnics")

    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", attach=[
            fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0"),
            fleet_pb2.HostAttachment(network="vmnet", nic="eth1")]), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "network vmnet is not attached to cluster Default" in err.value.details()
    assert "attach[1].network" in err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name="vm1", nics=[
            vms_pb2.Nic(name="nic1", network="ovirtmgmt"), vms_pb2.Nic(name="nic2", network="vmnet")]), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "vmnet" in err.value.details() and "Default" in err.value.details()
    assert "nics[1].network" in err.value.details()

    vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name="vm2"), timeout=30)
    before = _rows(manager, "host_network_attachments", "vms", "vnics")
    with pytest.raises(grpc.RpcError) as err:
        vms.AddNic(vms_pb2.AddNicRequest(vm="vm2", nic=vms_pb2.Nic(name="nic1", network="vmnet")), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "vmnet" in err.value.details() and "nic.network" in err.value.details()
    assert _rows(manager, "host_network_attachments", "vms", "vnics") == before


# -- a real manager and real agents ----------------------------------------------------------------------


class Host:
    """A host namespace with three NICs; its agent enrolled with a token as on a real host, started at will."""

    def __init__(self, manager, ns: str, name: str = "host1") -> None:
        self.manager, self.ns, self.name = manager, ns, name
        self.root = Path(tempfile.mkdtemp(prefix="vft-agent-"))  # short: a unix socket path has 107 bytes
        self.root.chmod(0o755)
        self.sock = self.root / "agent.sock"
        self.proc: subprocess.Popen | None = None

    def add(self, *cli_args: str) -> dict:
        """`virtfleet host add` as an admin types it, then `virtfleet-agent enroll` in the namespace."""
        done = subprocess.run([CLI, "--manager", self.manager.target, "host", "add", self.name,
                               "--address", "192.0.2.11", "--endpoint", f"unix://{self.sock}", *cli_args,
                               "-o", "json"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        added = json.loads(done.stdout)
        reply = fleet_pb2.EnrollHostResponse(enroll_token=added["token"], ca_fingerprint=added["ca_fingerprint"],
                                             enroll_endpoint=self.manager.enroll_target)
        enrolled = enroll_in_namespace(self.ns, reply, self.root / "pki")
        assert enrolled.returncode == 0, enrolled.stderr
        return added

    def start(self, armed: str | None = None) -> None:
        self.sock.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
        self.proc = start_agent(self.ns, self.sock, self.root / "pki", self.root / "state",
                                env=failpoints.arm(env, armed) if armed else env)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def bridges(self) -> dict[str, list[str]]:
        """Each bridge in the namespace with its ports, as the kernel has them."""
        def ip_json(*args: str) -> list[dict]:
            return json.loads(subprocess.run(["ip", "-n", self.ns, "-j", *args], capture_output=True, text=True,
                                             check=True).stdout or "[]")
        found: dict[str, list[str]] = {b["ifname"]: [] for b in ip_json("link", "show", "type", "bridge")}
        for link in ip_json("link"):
            if link.get("master") in found:
                found[link["master"]].append(link["ifname"])
        return {b: sorted(p) for b, p in found.items()}

    def recorded(self) -> dict[str, str]:
        view = self.manager.fleet.GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host=self.name), timeout=10)
        return {n.network: n.nic for n in view.networks}


@pytest.fixture
def host(manager, netns_factory) -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 3)
    h = Host(manager, ns.name)
    try:
        yield h
    finally:
        h.stop()
        shutil.rmtree(h.root, ignore_errors=True)


def _actions(manager, host: str) -> list[str]:
    manager.app.events.flush()
    return [r.rpc for r in manager.app.event_log.list(EventFilter(object_kind="host", object_name=host))]


def _bridged(host: Host, expected: dict[str, list[str]]) -> bool:
    got = host.bridges()
    return all(got.get(b) == ports for b, ports in expected.items())


def test_a_host_added_with_nic_labels_gets_its_labelled_networks_once_it_reports(manager, host):
    for net, label in (("green", "lab"), ("blue", "far")):
        _net(manager, net)
        assert list(_label(manager, net, label).hosts) == []   # no host carries the label yet
    added = host.add("--nic-label", "eth1=lab", "--nic-label", "eth2=far")
    assert added["host"]["status"] == "pending"
    assert added["host"]["nic_labels"] == [{"nic": "eth1", "label": "lab"}, {"nic": "eth2", "label": "far"}]
    assert host.bridges() == {}

    host.start()
    assert eventually(lambda: host.recorded() == {"green": "eth1", "blue": "eth2"}, timeout_s=60), host.recorded()
    assert _bridged(host, {"green": ["eth1"], "blue": ["eth2"]}), host.bridges()
    assert eventually(lambda: "network.labels_applied" in _actions(manager, "host1"))


def test_a_host_added_with_a_label_two_networks_carry_gets_both(manager, host, netns):
    if not vlan_support(netns):
        pytest.skip("this kernel makes no 802.1Q VLAN devices (module 8021q): two networks cannot share eth1")
    _net(manager, "green")
    _net(manager, "red", vlan=101)
    for net in ("green", "red"):
        _label(manager, net, "lab")
    host.add("--nic-label", "eth1=lab")
    host.start()
    assert eventually(lambda: host.recorded() == {"green": "eth1", "red": "eth1"}, timeout_s=60), host.recorded()
    assert _bridged(host, {"green": ["eth1"], "red": ["eth1.101"]}), host.bridges()


def vlan_support(netns) -> bool:
    """Whether this kernel makes 802.1Q devices (module 8021q)."""
    netns.ip("link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
    try:
        netns.ip("link", "add", "link", "probe0", "name", "probe0.7", "type", "vlan", "id", "7")
    except AssertionError:
        return False
    return True


def test_a_host_away_during_a_label_change_gets_the_network_when_it_is_back(manager, host):
    host.add("--nic-label", "eth1=lab")
    host.start()
    assert eventually(lambda: manager.app.monitor.current("host1") is not None)
    _net(manager, "green")
    host.stop()

    outcome = _label(manager, "green", "lab")
    [change] = outcome.hosts
    assert (change.host, change.applied, list(change.attached)) == ("host1", False, ["green=eth1"])
    assert "next report" in change.error
    assert host.recorded() == {} and "green" not in host.bridges()

    host.start()   # as systemd would
    assert eventually(lambda: host.recorded() == {"green": "eth1"}, timeout_s=60), host.recorded()
    assert _bridged(host, {"green": ["eth1"]}), host.bridges()
    assert eventually(lambda: "network.labels_applied" in _actions(manager, "host1"))
    assert eventually(lambda: manager.app.labels.catching_up.idle("host1"))
    # Nothing is missing now: catching up again does nothing and says nothing.
    applied = _actions(manager, "host1").count("network.labels_applied")
    links = {link.name for link in manager.app.monitor.current("host1").state.links}
    assert manager.app.labels.catch_up("host1", links) is None
    assert _actions(manager, "host1").count("network.labels_applied") == applied


def test_a_lost_reply_recorded_at_the_agents_return_has_the_host_judged_again(manager, host):
    _net(manager, "red")
    host.add()
    host.start()
    manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", attach=[
        fleet_pb2.HostAttachment(network="red", nic="eth2")]), timeout=60)
    manager.fleet.AttachNetworkToCluster(fleet_pb2.AttachNetworkToClusterRequest(network="red", cluster="Default",
                                                                                 required=True))
    status = lambda: manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1")).status  # noqa: E731
    assert eventually(lambda: status() == "up")

    host.stop()
    host.start(armed=crashpoints.CONFIG_SAVED)   # it dies after saving the next change, before replying
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", detach=["red"]), timeout=60)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert host.proc.wait(timeout=30) == -signal.SIGKILL

    # Back without red (it was detached): the host lacks a network it is still recorded to carry until the
    # lost reply is recorded; recorded, it is judged again: red is no longer one it must carry.
    host.start()
    assert eventually(lambda: host.recorded() == {} and manager.app.networks.lost_replies.pending("host1") is None,
                      timeout_s=60)
    manager.app.networks.operational.wait_written()
    assert eventually(lambda: status() == "up"), manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1"))
