"""The agent's VM changes: one at a time per VM, a bounded number per host, none for a caller gone.

A real agent process (in a throwaway network namespace, on libvirt's test driver) with
`vm_changes_max = 2` and failpoint `agent.vm.stop` armed to sleep, so each graceful stop
holds its VM's turn for SLEEP_S. The agent logs each failpoint it passes: the test waits
for those lines to know a stop is stuck, never for a time.
"""
from __future__ import annotations

import os
import queue
import signal
import threading
import time
from concurrent import futures

import grpc
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.pki import CertificateAuthority  # noqa: E402
from virtfleet import failpoints  # noqa: E402
from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.rpc import field_violations  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import vm_pb2, vm_pb2_grpc  # noqa: E402

from tests.fixtures.agent_process import start_agent  # noqa: E402

HOST = "host1"
SLEEP_S = 8


class Agent:
    def __init__(self, stub: vm_pb2_grpc.VmAgentServiceStub, lines: "queue.Queue[str]") -> None:
        self.stub = stub
        self._lines = lines

    def stuck_stops(self, count: int) -> None:
        """Return once the agent has logged `count` more graceful stops held at the failpoint."""
        seen = 0
        while seen < count:
            line = self._lines.get(timeout=60)   # a guard against a hang, not a timing assertion
            seen += "failpoint agent.vm.stop" in line

    def running(self, name: str) -> None:
        self.stub.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(name=name, memory_mib=64, vcpus=1)), timeout=10)
        self.stub.StartVm(vm_pb2.StartVmRequest(name=name), timeout=10)

    def state(self, name: str) -> int:
        return self.stub.GetVm(vm_pb2.GetVmRequest(name=name), timeout=10).state


@pytest.fixture
def agent(tmp_path, netns_factory):
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    key, csr = make_key_and_csr(HOST)
    TlsMaterial(ca.cert_pem, ca.sign_agent_csr(csr, HOST, "192.0.2.11"), key).save(tmp_path / "pki")
    config = tmp_path / "agent.toml"
    config.write_text('libvirt_uri = "test:///default"\nvm_changes_max = 2\n')
    sock = tmp_path / "agent.sock"
    env = failpoints.arm(dict(os.environ), "agent.vm.stop", action=f"sleep:{SLEEP_S}")
    proc = start_agent(netns_factory().name, sock, tmp_path / "pki", tmp_path / "state",
                       args=["--config", str(config)], env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(raw.decode()) for raw in proc.stderr], daemon=True).start()
    channel = grpc.secure_channel(f"unix://{sock}", ca.manager_material().channel_credentials(),
                                  options=[("grpc.ssl_target_name_override", HOST)])
    try:
        yield Agent(vm_pb2_grpc.VmAgentServiceStub(channel), lines)
    finally:
        channel.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _code(call, request, timeout: float) -> grpc.StatusCode:
    try:
        call(request, timeout=timeout)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_changes_past_the_hosts_bound_are_refused_and_reads_go_on(agent):
    for name in ("a", "b", "c"):
        agent.running(name)
    with futures.ThreadPoolExecutor(2) as pool:
        stops = [pool.submit(_code, agent.stub.StopVm, vm_pb2.StopVmRequest(name=n), 3) for n in ("a", "b")]
        agent.stuck_stops(2)
        with pytest.raises(grpc.RpcError) as full:
            agent.stub.DestroyVm(vm_pb2.DestroyVmRequest(name="c"), timeout=10)
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "vm_changes_max" in full.value.details()
        listed = {v.name: v.state for v in agent.stub.ListVms(vm_pb2.ListVmsRequest(), timeout=10).vms}
        assert [listed[n] for n in ("a", "b", "c")] == [vm_pb2.VM_STATE_RUNNING] * 3
        assert [s.result() for s in stops] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
    # once the stuck stops let go (having found their callers gone), the guests they held are still running
    for name in ("a", "b", "c"):
        assert _admitted(agent.stub.DestroyVm, vm_pb2.DestroyVmRequest(name=name)).state == vm_pb2.VM_STATE_SHUTOFF


def _admitted(call, request):
    """The call, retried while the host is full (a wait for the stuck changes to end, not a timing assertion)."""
    for _ in range(600):
        try:
            return call(request, timeout=30)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            time.sleep(0.1)
    raise AssertionError("the host never had room for the change")


def test_a_vms_changes_run_one_at_a_time_and_one_whose_caller_left_while_queued_never_runs(agent):
    agent.running("a")
    with futures.ThreadPoolExecutor(1) as pool:
        stop = pool.submit(agent.stub.StopVm, vm_pb2.StopVmRequest(name="a", timeout_s=5), timeout=SLEEP_S + 20)
        agent.stuck_stops(1)
        # queued behind the stop for the VM's turn until its caller gives up; run after the stop, it would succeed
        assert _code(agent.stub.UndefineVm, vm_pb2.UndefineVmRequest(name="a"), 2) == grpc.StatusCode.DEADLINE_EXCEEDED
        stopped = stop.result()   # its caller waited: the guest shut down, and was not destroyed
    assert stopped.vm.state == vm_pb2.VM_STATE_SHUTOFF and not stopped.destroyed
    assert agent.state("a") == vm_pb2.VM_STATE_SHUTOFF   # still defined: the undefine never ran
    agent.stub.UndefineVm(vm_pb2.UndefineVmRequest(name="a"), timeout=10)


def test_a_stop_timeout_beyond_the_limit_is_refused_naming_the_field(agent):
    agent.running("a")
    with pytest.raises(grpc.RpcError) as err:
        agent.stub.StopVm(vm_pb2.StopVmRequest(name="a", timeout_s=2**32 - 1), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["timeout_s"]
    assert agent.state("a") == vm_pb2.VM_STATE_RUNNING
