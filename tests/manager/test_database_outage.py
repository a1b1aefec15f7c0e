"""PostgreSQL stopped, restarted and crashed under a running manager: callers hear UNAVAILABLE, never INTERNAL.

A private cluster per test (the test stops it, so it cannot be the session's),
the manager's real gRPC server on a unix socket, and the fleet simulator as the
hosts whose states the monitor keeps in memory. Durations are measured and
printed, not asserted: the calls must come back before the client's deadline,
with the status that says what happened.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from agent.sim.fleet import FleetSimulator, set_mtu
from manager.api.listeners import serve
from manager.client import open_channel
from tests.fixtures.agent_process import simulated_fleet_material
from manager.app import ManagerApp
from manager.config import ManagerConfig
from manager.lab.postgres import PrivateCluster
from tests.fixtures.lab import eventually
from virtfleet.v1 import audit_pb2, audit_pb2_grpc, fleet_pb2, fleet_pb2_grpc

DEADLINE_S = 10.0   # the client's; an outage must be reported well before it


@dataclass
class Outage:
    """A manager and the PostgreSQL cluster it alone uses, which the test may stop and start."""

    cluster: PrivateCluster
    app: ManagerApp
    target: str
    channel: grpc.Channel

    @property
    def fleet(self) -> fleet_pb2_grpc.FleetServiceStub:
        return fleet_pb2_grpc.FleetServiceStub(self.channel)

    def stop(self, how: str) -> None:
        """`fast shutdown` (pg_ctl -m fast), or `crash`: SIGQUIT, PostgreSQL's immediate shutdown, which
        writes no checkpoint (the next start runs crash recovery)."""
        if how == "fast shutdown":
            self.cluster.stop()
            return
        pid = self.cluster.pid()
        os.kill(pid, signal.SIGQUIT)
        assert eventually(lambda: not _running(pid), timeout_s=60)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def outage() -> Iterator[Outage]:
    root = Path(tempfile.mkdtemp(prefix="vft-outage-"))
    root.chmod(0o755)  # the cluster runs as postgres and must reach its directory
    cluster = PrivateCluster(root / "pg")
    cluster.init()
    cluster.start(durable=True)
    app = listeners = channel = None
    try:
        cfg = ManagerConfig(dsn=cluster.create_database(), listen=str(root / "manager.sock"), pki_dir=root / "pki",
                            agent_timeout_s=5.0, audit_interval_s=0)
        app = ManagerApp.create(cfg)
        listeners = serve(app, cfg, max_workers=16)
        app.start_background()
        channel = open_channel(f"unix://{cfg.listen}")
        yield Outage(cluster, app, f"unix://{cfg.listen}", channel)
    finally:
        if channel is not None:
            channel.close()
        if listeners is not None:
            listeners.stop(grace=None)
        if app is not None:
            app.close()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _create(o: Outage, name: str) -> fleet_pb2.LogicalNetwork:
    return o.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name)),
                                 timeout=DEADLINE_S)


def _failed(call) -> tuple[grpc.RpcError, float]:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value, time.monotonic() - started


def _names(o: Outage) -> set[str]:
    return {n.name for n in o.fleet.ListNetworks(fleet_pb2.ListNetworksRequest(), timeout=DEADLINE_S).networks}


@pytest.mark.parametrize("stop", ["fast shutdown", "crash"])
def test_calls_with_the_database_down_are_unavailable_and_the_first_after_it_returns_succeeds(outage, stop):
    _create(outage, "before")
    outage.stop(stop)

    err, took = _failed(lambda: _create(outage, "during"))
    print(f"write with the database down ({stop}): {err.code().name} after {took:.2f} s")
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    assert err.details().startswith("the database is unreachable: "), err.details()
    err, took = _failed(lambda: _names(outage))
    print(f"read with the database down ({stop}): {err.code().name} after {took:.2f} s")
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()

    outage.cluster.start(durable=True)
    started = time.monotonic()
    _create(outage, "after")
    print(f"first call after the database came back: {time.monotonic() - started:.3f} s")
    assert _names(outage) == {"ovirtmgmt", "before", "after"}


@pytest.mark.parametrize("stop", ["fast shutdown", "crash"])
def test_a_restart_under_load_fails_nothing_internal_and_loses_nothing_confirmed(outage, stop):
    confirmed: list[str] = []
    outcomes: dict[str, grpc.StatusCode] = {}
    done = threading.Event()

    def client(worker: int) -> None:
        for i in range(10_000):
            if done.is_set():
                return
            name = f"net{worker}x{i}"
            try:
                _create(outage, name)
                confirmed.append(name)
                outcomes[name] = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                outcomes[name] = exc.code()

    workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in workers:
        t.start()
    try:
        assert eventually(lambda: len(confirmed) >= 20)
        outage.stop(stop)
        outage.cluster.start(durable=True)
        after_restart = len(confirmed)
        assert eventually(lambda: len(confirmed) >= after_restart + 20), "no call succeeded after the restart"
    finally:
        done.set()
        for t in workers:
            t.join(60)

    codes = {code.name for code in outcomes.values()}
    print(f"{len(outcomes)} calls across a restart ({stop}): {sorted(codes)}, "
          f"{sum(c != grpc.StatusCode.OK for c in outcomes.values())} not OK")
    assert codes <= {"OK", "UNAVAILABLE"}, outcomes
    assert set(confirmed) <= _names(outage)      # nothing confirmed is lost


@pytest.fixture
def simulated_host(outage) -> Iterator[FleetSimulator]:
    with tempfile.TemporaryDirectory(prefix="vft-sim-") as d:
        sock = Path(d) / "sim.sock"
        material = simulated_fleet_material(outage.app.ca, lambda spec, csr: outage.fleet.EnrollHost(
            fleet_pb2.EnrollHostRequest(name=spec.name, address=spec.address, csr_pem=csr, endpoint=f"unix://{sock}"),
            timeout=DEADLINE_S).certificate_pem, hosts=1, vms=1, nics=2)
        with FleetSimulator(material, sock, hosts=1, vms=1, nics=2) as sim:
            assert eventually(lambda: _holds(outage, sim))
            yield sim


def _holds(o: Outage, sim: FleetSimulator) -> bool:
    current = o.app.monitor.current("sim00001")
    return current is not None and current.state == sim.hosts["sim00001"].state


def _vmnet_mtu(report: fleet_pb2.HostNetworkReport) -> int:
    return next(link.mtu for link in report.state.links if link.name == "vmnet")


def test_what_the_monitor_holds_is_served_while_the_database_is_down_and_written_once_it_is_back(
        outage, simulated_host):
    audits = audit_pb2_grpc.AuditServiceStub(outage.channel)
    ran = audits.RunAudit(audit_pb2.RunAuditRequest(), timeout=DEADLINE_S)
    outage.app.monitor.flush()
    outage.cluster.stop()

    simulated_host.change([("sim00001", set_mtu("vmnet", 9000))])
    assert eventually(lambda: _holds(outage, simulated_host))
    for cached in (False, True):
        report = outage.fleet.GetHostNetworkReport(fleet_pb2.GetHostNetworkReportRequest(name="sim00001",
                                                                                          cached=cached),
                                                   timeout=DEADLINE_S)
        assert report.host == "sim00001" and _vmnet_mtu(report) == 9000
    listed = audits.ListFindings(audit_pb2.ListFindingsRequest(), timeout=DEADLINE_S)
    assert listed.ran_at == ran.ran_at and listed.total == ran.total
    err, _ = _failed(lambda: outage.fleet.GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host="sim00001"),
                                                          timeout=DEADLINE_S))
    assert err.code() == grpc.StatusCode.UNAVAILABLE     # the desired networks live only in the database

    outage.cluster.start(durable=True)
    stored = lambda: outage.fleet.GetHostNetworkReport(  # noqa: E731
        fleet_pb2.GetHostNetworkReportRequest(name="sim00001", cached=True), timeout=DEADLINE_S)
    assert eventually(lambda: _vmnet_mtu(stored()) == 9000)   # the monitor wrote what it learnt meanwhile


def test_the_cli_says_the_database_is_unreachable_not_the_manager(outage):
    outage.cluster.stop()
    done = subprocess.run([str(Path(sys.executable).with_name("virtfleet")), "--manager", outage.target, "network",
                           "list"],
                          capture_output=True, text=True, timeout=60)
    print(done.stderr)
    assert done.returncode == 1
    assert "error: UNAVAILABLE: the database is unreachable: " in done.stderr, done.stderr
    assert "cannot reach the manager" not in done.stderr
