"""Stuck VM stops against real agent processes: the caller's deadline reaches the host, and one VM's stuck call
starves no other.

The manager is served as in production (16 API workers, 30 s agent timeout); each host is a real agent
process in a network namespace of its own, on libvirt's test driver, with failpoint `agent.vm.stop` armed to
sleep: every graceful stop then holds its VM's turn on the agent for SLEEP_S, as a guest ignoring ACPI would.
A force stop (DestroyVm) of such a VM queues behind the stuck stop on the agent, so its success proves the
stuck stop changed nothing after its caller had gone (a VM it had stopped could not be destroyed).
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.api.listeners import serve  # noqa: E402
from manager.client import open_channel  # noqa: E402
from manager.app import ManagerApp  # noqa: E402
from manager.config import ManagerConfig  # noqa: E402
from virtfleet import failpoints  # noqa: E402
from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.rpc import field_violations  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import vms_pb2, vms_pb2_grpc  # noqa: E402

from tests.fixtures.agent_process import start_agent  # noqa: E402

from .vmhelpers import create_vm  # noqa: E402

SLEEP_S = 12          # how long the failpoint holds each graceful stop on its agent
STOP_DEADLINE_S = 6   # the admin's deadline for such a stop: it gives up long before the agent's stop goes on


@dataclass
class Fleet:
    app: ManagerApp
    channel: grpc.Channel

    @property
    def vms(self) -> vms_pb2_grpc.VmServiceStub:
        return vms_pb2_grpc.VmServiceStub(self.channel)


@pytest.fixture
def fleet(request, empty_db, netns_factory):
    """The manager as `virtfleet-manager` runs it (settings changed by the test's parameter), two agents."""
    with tempfile.TemporaryDirectory(prefix="vft-dl-") as d:
        root = Path(d)
        cfg = ManagerConfig(dsn=empty_db, listen=str(root / "manager.sock"), pki_dir=root / "pki",
                            **getattr(request, "param", {}))
        app = ManagerApp.create(cfg)
        listeners = serve(app, cfg)
        agents = []
        try:
            for i, name in enumerate(("host1", "host2")):
                agents.append(_agent(app, name, f"192.0.2.{11 + i}", root / name, netns_factory().name))
            with open_channel(f"unix://{cfg.listen}") as channel:
                yield Fleet(app, channel)
        finally:
            for proc, log in agents:
                os.kill(proc.pid, signal.SIGKILL)   # its test driver's VMs go with it
                proc.wait()
                log.close()
            listeners.stop(grace=None)
            app.close()


def _agent(app: ManagerApp, name: str, address: str, root: Path, ns: str) -> tuple[subprocess.Popen, object]:
    key, csr = make_key_and_csr(name)
    TlsMaterial(app.ca.cert_pem, app.ca.sign_agent_csr(csr, name, address), key).save(root / "pki")
    sock = root / "agent.sock"
    log = open(root.parent / f"{name}.log", "wb")
    env = failpoints.arm(dict(os.environ), "agent.vm.stop", action=f"sleep:{SLEEP_S}")
    proc = start_agent(ns, sock, root / "pki", root / "state", args=["--libvirt-uri", "test:///default"],
                       env=env, stderr=log)
    with psycopg.connect(app.pool.conninfo, autocommit=True) as conn:
        conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                        SELECT id, %s, %s, %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                     (name, address, f"unix://{sock}"))
        conn.execute("UPDATE vnic_profiles SET filter_name = NULL, filter_parameters = '[]'")  # test driver: no nwfilter
    return proc, log


def _claimed(fleet: Fleet) -> int:
    with psycopg.connect(fleet.app.pool.conninfo) as conn:
        return conn.execute("SELECT count(*) FROM vms WHERE claim IS NOT NULL").fetchone()[0]


def _until(condition, what: str, limit_s: float = 60.0) -> None:
    """Wait for a state the test needs (a guard against a hang, not a timing assertion)."""
    give_up = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < give_up, f"never saw {what}"
        time.sleep(0.05)


def _stop_code(fleet: Fleet, name: str) -> grpc.StatusCode:
    try:
        fleet.vms.StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=name, timeout_s=60),
                                     timeout=STOP_DEADLINE_S)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _force_stop(fleet: Fleet, name: str) -> vms_pb2.VirtualMachine:
    """Queues on the agent behind the VM's stuck stop; fails if that stop had stopped the guest."""
    return fleet.vms.StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=name, force=True), timeout=60)


def test_a_stop_whose_caller_gave_up_changes_nothing_and_delete_is_refused_meanwhile(fleet):
    create_vm(fleet, "dl-a", "nic1=ovirtmgmt")
    fleet.vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="dl-a", host="host1"), timeout=30)
    with futures.ThreadPoolExecutor(1) as pool:
        stop = pool.submit(_stop_code, fleet, "dl-a")
        _until(lambda: _claimed(fleet) == 1 or stop.done(), "the stop claim the VM")
        with pytest.raises(grpc.RpcError) as refused:
            fleet.vms.DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="dl-a"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert stop.result() == grpc.StatusCode.DEADLINE_EXCEEDED
    _until(lambda: _claimed(fleet) == 0, "the failed stop end its claim")
    vm = fleet.vms.GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="dl-a"), timeout=10)
    assert (vm.state, vm.host) == ("up", "host1")
    down = _force_stop(fleet, "dl-a")   # the guest was still running once the stuck stop had let go of it
    assert (down.state, down.host) == ("down", "")
    assert fleet.vms.DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="dl-a"), timeout=10).released_macs
    assert [v.name for v in fleet.vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=10).vms] == []


def test_ten_stuck_stops_do_not_block_calls_on_an_eleventh_vm(fleet):
    stuck = [f"dl-s{i}" for i in range(10)]
    for i, name in enumerate(stuck):
        create_vm(fleet, name, "nic1=ovirtmgmt")
        fleet.vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=name, host=f"host{1 + i % 2}"),
                                      timeout=30)
    create_vm(fleet, "dl-free", "nic1=ovirtmgmt")
    with futures.ThreadPoolExecutor(len(stuck)) as pool:
        stops = [pool.submit(_stop_code, fleet, name) for name in stuck]
        _until(lambda: _claimed(fleet) == len(stuck) or any(s.done() for s in stops), "all ten stops under way")
        listed = fleet.vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=10).vms
        assert len(listed) == 11
        started = fleet.vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="dl-free", host="host1"),
                                                timeout=10)
        assert (started.state, started.host) == ("up", "host1")
        assert [s.result() for s in stops] == [grpc.StatusCode.DEADLINE_EXCEEDED] * len(stuck)
    _until(lambda: _claimed(fleet) == 0, "the failed stops end their claims")
    vms = {v.name: v for v in fleet.vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=10).vms}
    assert all(vms[name].state == "up" for name in stuck)
    for name in stuck:
        assert _force_stop(fleet, name).state == "down"


@pytest.mark.parametrize("fleet", [{"vm_changes_max": 1}], indirect=True)
def test_changes_beyond_the_managers_bound_are_refused_while_reads_go_on(fleet):
    create_vm(fleet, "dl-b", "nic1=ovirtmgmt")
    create_vm(fleet, "dl-c", "nic1=ovirtmgmt")
    fleet.vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="dl-b", host="host2"), timeout=30)
    with futures.ThreadPoolExecutor(1) as pool:
        stop = pool.submit(_stop_code, fleet, "dl-b")   # takes the one VM change, and hangs on its agent
        _until(lambda: _claimed(fleet) == 1 or stop.done(), "the stop claim its VM")
        with pytest.raises(grpc.RpcError) as full:
            fleet.vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="dl-c"), timeout=10)
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "vm_changes_max" in full.value.details()
        assert len(fleet.vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=10).vms) == 2
        assert stop.result() == grpc.StatusCode.DEADLINE_EXCEEDED
    c = fleet.vms.GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="dl-c"), timeout=10)
    assert (c.state, c.host) == ("down", "")
    _until(lambda: _claimed(fleet) == 0, "the failed stop end its claim")
    assert _force_stop(fleet, "dl-b").state == "down"


def test_a_stop_timeout_beyond_the_limit_is_refused_naming_the_field(fleet):
    create_vm(fleet, "dl-t", "nic1=ovirtmgmt")
    with pytest.raises(grpc.RpcError) as err:
        fleet.vms.StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="dl-t", timeout_s=2**32 - 1), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["timeout_s"]
