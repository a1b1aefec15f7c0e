"""Hosts for manager tests: real agent processes on libvirt's test driver, each in a network namespace of its own.

A test-driver agent's domains live in its process: a SIGKILLed and restarted agent
comes back running none (a host that rebooted). The manager is told of the host by
its row (as enrolled), and the test may call the agent directly, as the manager
does, to change the host behind the manager's back.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import psycopg

from manager.pki import CertificateAuthority
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import vm_pb2, vm_pb2_grpc

from tests.fixtures.agent_process import start_agent


class TestDriverHost:
    __test__ = False   # not a test class

    def __init__(self, ca: CertificateAuthority, name: str, address: str, root: Path, ns: str,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.address, self.root, self.ns = name, address, root, ns
        self._ca = ca
        self._env = env
        key, csr = make_key_and_csr(name)
        TlsMaterial(ca.cert_pem, ca.sign_agent_csr(csr, name, address), key).save(root / "pki")
        self.proc: subprocess.Popen | None = None
        self._log = open(root / "agent.log", "ab")

    @property
    def socket(self) -> Path:
        return self.root / "agent.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> "TestDriverHost":
        """The agent, on a host carrying ovirtmgmt (a bridge in its namespace), as placement requires of a host
        that starts the tests' VMs."""
        self.socket.unlink(missing_ok=True)   # start_agent waits for the socket to appear
        if subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "show", "ovirtmgmt"],
                          capture_output=True, check=False).returncode != 0:
            subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "add", "ovirtmgmt", "up", "type", "bridge"],
                           check=True)
        self.proc = start_agent(self.ns, self.socket, self.root / "pki", self.root / "state",
                                args=["--libvirt-uri", "test:///default"], env=self._env, stderr=self._log)
        return self

    def kill(self) -> None:
        """SIGKILL: its domains go with it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._log.close()

    def enroll(self, dsn: str, status: str = "up") -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                            SELECT id, %s, %s, %s, 'test', %s FROM clusters WHERE name = 'Default'""",
                         (self.name, self.address, self.endpoint, status))

    def call(self, fn):
        """`fn(stub)` on the agent's VmAgentService, as the manager calls it."""
        channel = grpc.secure_channel(self.endpoint, self._ca.manager_material().channel_credentials(),
                                      options=[("grpc.ssl_target_name_override", self.name)])
        with channel:
            return fn(vm_pb2_grpc.VmAgentServiceStub(channel))

    def running(self) -> set[str]:
        vms = self.call(lambda s: s.ListVms(vm_pb2.ListVmsRequest(), timeout=10)).vms
        return {v.name for v in vms if v.state == vm_pb2.VM_STATE_RUNNING}

    def destroy(self, vm: str) -> None:
        """Behind the manager's back (someone ran `virsh destroy` on the host)."""
        self.call(lambda s: s.DestroyVm(vm_pb2.DestroyVmRequest(name=vm), timeout=10))
        self.call(lambda s: s.UndefineVm(vm_pb2.UndefineVmRequest(name=vm), timeout=10))


def until(condition, what: str, limit_s: float = 60.0) -> None:
    """Wait for a state the test needs (a guard against a hang, not a timing assertion)."""
    give_up = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < give_up, f"never saw {what}"
        time.sleep(0.05)


def no_network_filters(dsn: str) -> None:
    """The test driver has no nwfilter driver: profiles filter nothing (vmhelpers.without_network_filters)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE vnic_profiles SET filter_name = NULL, filter_parameters = '[]'")
