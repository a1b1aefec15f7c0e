"""Certificates renewed under live traffic: real agent processes in namespaces, real TLS, real PostgreSQL.

A thread keeps calling each agent through the manager's own clients while
certificates change; not one call may fail. Tests wait on conditions (the stored
fingerprint changing), never on durations.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from manager.pki import CertificateAuthority, fingerprint, pin_name
from tests.fixtures.agent_process import host_pki, start_agent
from tests.fixtures.manager import RunningManager, running_manager
from virtfleet import failpoints
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import NOT_MANAGER, TlsMaterial
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, fleet_pb2, pki_pb2, pki_pb2_grpc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="agents run in network namespaces (root)")

CLI = str(Path(sys.executable).with_name("virtfleet"))
WAIT_S = 120.0  # a bound on a hung test, not a timing the test asserts


@dataclass
class Agent:
    """One enrolled host's agent: its files stay across restarts (a crash test starts it again)."""

    name: str
    ns: str
    root: Path
    proc: subprocess.Popen | None = None

    @property
    def sock(self) -> Path:
        return self.root / "agent.sock"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def start(self, env: dict[str, str] | None = None) -> None:
        self.proc = start_agent(self.ns, self.sock, self.pki, self.root / "state", env=env)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@contextmanager
def enrolled(manager: RunningManager, ns: str, name: str, address: str,
             env: dict[str, str] | None = None) -> Iterator[Agent]:
    agent = Agent(name, ns, Path(tempfile.mkdtemp(prefix="vft-cert-")))
    key, csr = make_key_and_csr(name)
    reply = manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(
        name=name, address=address, csr_pem=csr, endpoint=f"unix://{agent.sock}"))
    TlsMaterial(reply.ca_certificate_pem, reply.certificate_pem, key).save(agent.pki)
    agent.start(env)
    try:
        yield agent
    finally:
        agent.stop()
        shutil.rmtree(agent.root, ignore_errors=True)


@dataclass
class Caller:
    """A thread calling GetCapabilities on hosts through the manager's AgentClients until stopped."""

    manager: RunningManager
    hosts: list[Agent]
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Caller":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for host in self.hosts:
                try:
                    self.manager.app.agents.call(host.name, f"unix://{host.sock}", lambda stub, t: stub.GetCapabilities(
                        agent_pb2.GetCapabilitiesRequest(), timeout=t))
                    self.calls += 1
                except Exception as exc:  # noqa: BLE001 - every failure is what the test reports
                    self.failures.append(f"{host.name}: {exc}")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.05)


def answers(manager: RunningManager, agent: Agent) -> bool:
    try:
        manager.app.agents.call(agent.name, f"unix://{agent.sock}", lambda stub, t: stub.GetCapabilities(
            agent_pb2.GetCapabilitiesRequest(), timeout=t))
    except Exception:  # noqa: BLE001 - not yet
        return False
    return True


def stored_fingerprint(manager: RunningManager, name: str) -> str:
    return manager.fleet.GetHost(fleet_pb2.GetHostRequest(name=name)).cert_fingerprint


def pki(manager: RunningManager) -> pki_pb2_grpc.PkiServiceStub:
    return pki_pb2_grpc.PkiServiceStub(manager.channel)


def test_an_agent_keeps_answering_across_three_renewals(empty_db, netns_factory):
    recorded: list[tuple[str, str, str]] = []
    with running_manager(empty_db, agent_cert_lifetime_s=6.0) as manager:
        manager.app.certificates.record_system = lambda action, kind, name, *_: recorded.append((action, kind, name))
        with enrolled(manager, netns_factory().name, "host1", "192.0.2.11") as agent:
            seen = [stored_fingerprint(manager, "host1")]

            def renewed_three_times() -> bool:
                now = stored_fingerprint(manager, "host1")
                if now != seen[-1]:
                    seen.append(now)
                return len(seen) == 4

            with Caller(manager, [agent]) as caller:
                wait_for(renewed_three_times, "three renewals")
                calls_then = caller.calls
                wait_for(lambda: caller.calls > calls_then, "a call after the third renewal")
            manager.app.certificates.stop()  # no renewal in flight while the files are compared
            assert caller.failures == []
            assert len(set(seen)) == 4
            assert recorded[:3] == [("certificate.renewed", "host", "host1")] * 3
            assert fingerprint((agent.pki / "cert.pem").read_bytes()) == stored_fingerprint(manager, "host1")
            assert not (agent.pki / "pending-key.pem").exists()
            assert (agent.pki / "key.pem").stat().st_mode & 0o777 == 0o600


def test_an_agent_killed_during_renewal_keeps_its_old_certificate_and_the_next_round_renews(empty_db, netns_factory):
    with running_manager(empty_db, cert_check_interval_s=-1) as manager:  # this test drives the rounds
        env = failpoints.arm(dict(os.environ), "agent.certificates.install")
        with enrolled(manager, netns_factory().name, "host1", "192.0.2.11", env=env) as agent:
            before, cert_before = stored_fingerprint(manager, "host1"), (agent.pki / "cert.pem").read_bytes()
            assert manager.app.certificates.renew("host1") is False  # the agent died inside InstallCertificate
            assert agent.proc.wait(timeout=30) == -9
            assert stored_fingerprint(manager, "host1") == before
            assert (agent.pki / "cert.pem").read_bytes() == cert_before
            assert (agent.pki / "pending-key.pem").stat().st_mode & 0o777 == 0o600

            agent.start()  # the failpoint disarmed: the old certificate is served and still pinned
            wait_for(lambda: answers(manager, agent), "the restarted agent answering with its old certificate")
            with Caller(manager, [agent]) as caller:
                assert manager.app.certificates.renew("host1") is True
                calls_then = caller.calls
                wait_for(lambda: caller.calls > calls_then + 2, "calls with the new certificate")
            assert caller.failures == []
            after = stored_fingerprint(manager, "host1")
            assert after != before and fingerprint((agent.pki / "cert.pem").read_bytes()) == after
            # A manager that installed a certificate but could not store it still gets in with the old pin:
            # the agent serves its previous certificate to whoever asks for that pin's name (SNI).
            old_pin = pin_name(cert_before)
            with grpc.secure_channel(f"unix://{agent.sock}", manager.app.agents.material.channel_credentials(),
                                     options=[("grpc.ssl_target_name_override", old_pin)]) as channel:
                agent_pb2_grpc.AgentServiceStub(channel).GetCapabilities(agent_pb2.GetCapabilitiesRequest(), timeout=10)


def test_the_manager_rotates_its_client_certificate_without_a_failed_call(empty_db, netns_factory):
    with running_manager(empty_db, manager_cert_lifetime_s=6.0) as manager:
        with enrolled(manager, netns_factory().name, "host1", "192.0.2.11") as agent:
            seen = [fingerprint(manager.app.agents.material.cert_pem)]

            def rotated_twice() -> bool:
                now = fingerprint(manager.app.agents.material.cert_pem)
                if now != seen[-1]:
                    seen.append(now)
                return len(seen) == 3

            with Caller(manager, [agent]) as caller:
                wait_for(rotated_twice, "two rotations of the manager's certificate")
                calls_then = caller.calls
                wait_for(lambda: caller.calls > calls_then + 2, "calls with the newest certificate")
            manager.app.certificates.stop()
            assert caller.failures == []
            status = pki(manager).GetPkiStatus(pki_pb2.GetPkiStatusRequest())
            assert status.manager.fingerprint == fingerprint((manager.pki_dir / "manager.pem").read_bytes())
            assert status.manager.fingerprint in seen[1:]


def test_ca_rollover_with_two_hosts_renewed_one_after_the_other(empty_db, netns_factory):
    with running_manager(empty_db, cert_check_interval_s=-1) as manager, \
            enrolled(manager, netns_factory().name, "host-a", "192.0.2.11") as a, \
            enrolled(manager, netns_factory().name, "host-b", "192.0.2.12") as b:  # the test takes the steps
        old_manager = manager.app.agents.material
        with Caller(manager, [a, b]) as caller:
            wait_for(lambda: caller.calls > 4, "calls before the rollover")

            rotated = pki(manager).RotateCa(pki_pb2.RotateCaRequest())
            new_ca, old_ca = rotated.cas
            assert (new_ca.state, old_ca.state) == ("active", "retiring")
            assert {h.name: (h.issuer_fingerprint, h.renew_due) for h in rotated.hosts} == {
                "host-a": (old_ca.fingerprint, True), "host-b": (old_ca.fingerprint, True)}

            assert manager.app.certificates.renew("host-a")
            halfway = pki(manager).GetPkiStatus(pki_pb2.GetPkiStatusRequest())
            assert [ca.state for ca in halfway.cas] == ["active", "retiring"]
            assert {h.name: h.issuer_fingerprint for h in halfway.hosts} == {
                "host-a": new_ca.fingerprint, "host-b": old_ca.fingerprint}
            assert halfway.manager.issuer_fingerprint == old_ca.fingerprint
            calls_then = caller.calls
            wait_for(lambda: caller.calls > calls_then + 4, "calls to both hosts halfway")

            manager.app.certificates.check()  # host-b gets the bundle and its certificate, the manager its own
            done = pki(manager).GetPkiStatus(pki_pb2.GetPkiStatusRequest())
            assert [(ca.fingerprint, ca.state) for ca in done.cas] == [(new_ca.fingerprint, "active")]
            assert {h.issuer_fingerprint for h in [*done.hosts, done.manager]} == {new_ca.fingerprint}
            assert not any(h.renew_due for h in [*done.hosts, done.manager])
            calls_then = caller.calls
            wait_for(lambda: caller.calls > calls_then + 4, "calls to both hosts after the rollover")
        assert caller.failures == []
        for agent in (a, b):  # the agents trust the new CA alone: the manager's old certificate is refused
            assert [fingerprint(c.public_bytes(serialization.Encoding.PEM)) for c in
                    x509.load_pem_x509_certificates((agent.pki / "ca.pem").read_bytes())] == [new_ca.fingerprint]
            old_creds = grpc.ssl_channel_credentials(root_certificates=manager.app.ca.bundle_pem,
                                                     private_key=old_manager.key_pem,
                                                     certificate_chain=old_manager.cert_pem)
            with grpc.secure_channel(f"unix://{agent.sock}", old_creds,
                                     options=[("grpc.ssl_target_name_override", agent.name)]) as channel:
                with pytest.raises(grpc.RpcError) as err:
                    agent_pb2_grpc.AgentServiceStub(channel).GetCapabilities(agent_pb2.GetCapabilitiesRequest(),
                                                                             timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        shown = json.loads(subprocess.run([CLI, "--manager", manager.target, "pki", "status", "-o", "json"],
                                          check=True, capture_output=True, text=True).stdout)
        assert [ca["state"] for ca in shown["cas"]] == ["active"]
        assert {h["name"] for h in shown["hosts"]} == {"host-a", "host-b"}


def test_certificate_methods_refuse_a_caller_that_is_not_the_manager(tmp_path, netns_factory):
    host_pki(tmp_path)
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    key, csr = make_key_and_csr("intruder")
    cert = ca._issue(x509.load_pem_x509_csr(csr).public_key(), "intruder", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    creds = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem, private_key=key, certificate_chain=cert)
    sock = Path(tempfile.mkdtemp(prefix="vft-cert-")) / "agent.sock"
    proc = start_agent(netns_factory().name, sock, tmp_path / "agent", tmp_path / "state")
    try:
        with grpc.secure_channel(f"unix://{sock}", creds, options=[("grpc.ssl_target_name_override", "host1")]) as ch:
            stub = agent_pb2_grpc.AgentServiceStub(ch)
            for call in (lambda: stub.PrepareRenewal(agent_pb2.PrepareRenewalRequest(), timeout=10),
                         lambda: stub.InstallCertificate(agent_pb2.InstallCertificateRequest(cert_pem=cert), timeout=10),
                         lambda: stub.TrustBundle(agent_pb2.TrustBundleRequest(ca_bundle_pem=ca.cert_pem), timeout=10)):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert (err.value.code(), err.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, NOT_MANAGER)
        assert not (tmp_path / "agent" / "pending-key.pem").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(sock.parent, ignore_errors=True)
