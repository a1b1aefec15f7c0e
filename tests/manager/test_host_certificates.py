"""Host certificates the manager trusts and can revoke; enrollment on the host with a one-time token.

Real manager (real PostgreSQL, its enrollment listener over TLS), real agent processes in
network namespaces, real `virtfleet-agent enroll` runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import grpc
import psycopg
import pytest

from manager.pki import fingerprint, pin_name
from tests.fixtures.agent_process import enroll_in_namespace, enrolled_agent, start_agent
from tests.fixtures.lab import eventually
from tests.fixtures.manager import running_manager
from virtfleet.enroll import make_key_and_csr
from virtfleet.rpc import field_violations
from virtfleet.tls import MANAGER_COMMON_NAME, TlsMaterial
from virtfleet.v1 import fleet_pb2, pki_pb2, pki_pb2_grpc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agents run in network namespaces (root)")


def _add(manager, name="host1", address="192.0.2.11", endpoint="") -> fleet_pb2.EnrollHostResponse:
    return manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address=address, endpoint=endpoint))


def _enroll_stub(manager, ca_pem: bytes):
    channel = grpc.secure_channel(manager.enroll_target, grpc.ssl_channel_credentials(root_certificates=ca_pem),
                                  options=[("grpc.ssl_target_name_override", MANAGER_COMMON_NAME)])
    return channel, pki_pb2_grpc.EnrollServiceStub(channel)


def _enroll(manager, reply, token: str | None = None, csr: bytes | None = None) -> pki_pb2.EnrollResponse:
    channel, stub = _enroll_stub(manager, reply.ca_certificate_pem)
    with channel:
        return stub.Enroll(pki_pb2.EnrollRequest(token=reply.enroll_token if token is None else token,
                                                 csr_pem=csr or make_key_and_csr("x")[1]), timeout=10)


def _rows(manager, sql: str, *args):
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return conn.execute(sql, args).fetchall()


def _report(manager, name="host1"):
    return manager.fleet.GetHostNetworkReport(fleet_pb2.GetHostNetworkReportRequest(name=name), timeout=20)


def _answers(manager, name="host1") -> bool:
    try:
        return _report(manager, name).host == name
    except grpc.RpcError:
        return False


# -- enrollment with a token ------------------------------------------------------------------

def test_host_add_without_a_csr_gives_a_token_and_a_pending_host(manager):
    reply = _add(manager)
    assert reply.host.status == "pending" and not reply.certificate_pem
    assert reply.enroll_token.startswith("vfe_") and len(reply.enroll_token) == 47 and reply.token_expires_at.seconds > 0
    assert reply.ca_fingerprint == fingerprint(reply.ca_certificate_pem)
    assert reply.enroll_endpoint == manager.enroll_target
    stored = _rows(manager, "SELECT token_hash, used_at FROM enroll_tokens")
    assert len(stored) == 1 and reply.enroll_token not in stored[0][0] and stored[0][1] is None


def test_token_enrollment_end_to_end_in_a_host_namespace(manager, netns):
    with enrolled_agent(manager, netns.name, token=True):
        assert eventually(lambda: manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1")).status == "up")
        assert "lo" in [link.name for link in _report(manager).state.links]
        host = manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1"))
        (pem, pin, used), = _rows(manager, """SELECT h.cert_pem, h.cert_pin, t.used_at FROM hosts h
                                               JOIN enroll_tokens t ON t.host_id = h.id""")
        assert host.cert_fingerprint == fingerprint(bytes(pem)) and pin == pin_name(bytes(pem))
        assert used is not None


def test_a_reused_token_is_refused_and_changes_nothing(manager):
    reply = _add(manager)
    first = _enroll(manager, reply)
    with pytest.raises(grpc.RpcError) as err:
        _enroll(manager, reply)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "already used" in err.value.details()
    assert _rows(manager, "SELECT cert_fingerprint FROM hosts") == [(fingerprint(first.certificate_pem),)]
    manager.app.events.flush()
    enrollments = _rows(manager, "SELECT identity_name, code, message, summary::text FROM events "
                                 "WHERE rpc = '/virtfleet.v1.EnrollService/Enroll' ORDER BY id")
    assert [(who, code) for who, code, _, _ in enrollments] == [("host1", "OK"), ("enrolling host", "PERMISSION_DENIED")]
    assert "already used" in enrollments[1][2]
    assert reply.enroll_token not in enrollments[1][3]       # the token itself is never stored


def test_an_unknown_token_and_one_of_the_wrong_shape(manager):
    reply = _add(manager)
    with pytest.raises(grpc.RpcError) as err:
        _enroll(manager, reply, token="vfe_" + "A" * 43)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "unknown" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        _enroll(manager, reply, token="not a token")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["token"]
    assert _rows(manager, "SELECT status FROM hosts") == [("pending",)]
    assert _rows(manager, "SELECT used_at FROM enroll_tokens") == [(None,)]


def test_an_expired_token_is_refused(empty_db):
    with running_manager(empty_db, enroll_token_ttl_s=0.001) as manager:
        reply = _add(manager)
        with pytest.raises(grpc.RpcError) as err:
            _enroll(manager, reply)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "expired" in err.value.details()
        assert _rows(manager, "SELECT status, cert_pem FROM hosts") == [("pending", None)]


def test_a_weak_key_in_the_csr_keeps_the_token_unused(manager):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from virtfleet.enroll import subject

    key = rsa.generate_private_key(65537, 1024)
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject("h")).sign(key, hashes.SHA256())
    reply = _add(manager)
    with pytest.raises(grpc.RpcError) as err:
        _enroll(manager, reply, csr=csr.public_bytes(serialization.Encoding.PEM))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["csr_pem"]
    assert _enroll(manager, reply).host == "host1"   # the token still works


def test_a_wrong_ca_fingerprint_sends_nothing(manager, netns, tmp_path):
    reply = _add(manager)
    done = enroll_in_namespace(netns.name, reply, tmp_path / "pki", ca_fingerprint="ab" * 32)
    assert done.returncode == 1 and "does not present a CA with fingerprint" in done.stderr, done.stderr
    assert not (tmp_path / "pki").exists()
    assert _rows(manager, "SELECT used_at FROM enroll_tokens") == [(None,)]
    done = enroll_in_namespace(netns.name, reply, tmp_path / "pki", ca_fingerprint="xyz")
    assert done.returncode == 1 and "ca_fingerprint" in done.stderr


# -- pinning and revocation -------------------------------------------------------------------

def test_after_remove_and_new_enrollment_the_old_certificate_is_refused(manager, netns):
    root = Path(tempfile.mkdtemp(prefix="vft-pin-"))
    root.chmod(0o755)
    sock = root / "agent.sock"
    try:
        reply = _add(manager, endpoint=f"unix://{sock}")
        assert enroll_in_namespace(netns.name, reply, root / "old").returncode == 0
        old = start_agent(netns.name, sock, root / "old", root / "state")
        try:
            assert _report(manager).host == "host1"
            manager.fleet.DeleteHost(fleet_pb2.DeleteHostRequest(name="host1"))
            reply = _add(manager, endpoint=f"unix://{sock}")
            assert enroll_in_namespace(netns.name, reply, root / "new").returncode == 0
            with pytest.raises(grpc.RpcError) as err:   # the old agent, CA-signed for host1, still serves
                _report(manager)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            old.terminate()
            old.wait(timeout=20)
        new = start_agent(netns.name, sock, root / "new", root / "state")
        try:
            assert eventually(lambda: _answers(manager))   # the channel reconnects after its backoff
        finally:
            new.terminate()
            new.wait(timeout=20)
        revoked = _rows(manager, "SELECT host, fingerprint, reason FROM revoked_certificates")
        old_cert = TlsMaterial.load(root / "old").cert_pem
        assert revoked == [("host1", fingerprint(old_cert), "host removed")]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_revoke_cert_refuses_the_current_certificate_at_once(manager, netns):
    with enrolled_agent(manager, netns.name, token=True):
        assert _report(manager).host == "host1"
        before = manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1")).cert_fingerprint
        revoked = manager.pki.RevokeHostCertificate(pki_pb2.RevokeHostCertificateRequest(name="host1"))
        assert revoked.fingerprint == before
        assert manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1")).status == "revoked"
        with pytest.raises(grpc.RpcError) as err:   # a call that must reach the agent
            manager.fleet.SetupHostManagementNetwork(
                fleet_pb2.SetupHostManagementNetworkRequest(name="host1", nic="eth0", dry_run=True), timeout=20)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "revoked" in err.value.details()
        assert "host1" not in manager.app.monitor.watched()   # its state stream is closed
        assert _rows(manager, "SELECT reason FROM revoked_certificates") == [("revoked",)]
        # enrolling again: a new token for the same host
        again = _add(manager)
        assert again.enroll_token and again.host.status == "revoked"


def test_the_revoke_cli_says_what_it_revoked(manager):
    reply = _add(manager)
    cert = _enroll(manager, reply).certificate_pem
    cli = str(Path(os.sys.executable).with_name("virtfleet"))
    done = subprocess.run([cli, "--manager", manager.target, "host", "revoke-cert", "host1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"revoked the certificate of host1 ({fingerprint(cert)})"


def test_host_add_prints_the_token_and_the_enroll_command(manager):
    cli = str(Path(os.sys.executable).with_name("virtfleet"))
    done = subprocess.run([cli, "--manager", manager.target, "host", "add", "host1", "--address", "192.0.2.11"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ca = fingerprint((manager.pki_dir / "ca.pem").read_bytes())
    assert f"CA fingerprint: {ca}" in done.stdout
    assert f"virtfleet-agent enroll --manager {manager.enroll_target} --token " in done.stdout
    assert f"--ca-fingerprint {ca}" in done.stdout and "expires:" in done.stdout
