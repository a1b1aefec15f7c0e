"""Only the manager, holding a certificate of the manager's CA, may call an agent."""
from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import grpc
import pytest

from manager.lab import namespaces
from manager.pki import CertificateAuthority
from tests.fixtures.agent_process import start_agent
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import agent_pb2, agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs in a network namespace (root)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.load_or_create(root / "ca")
    key, csr = make_key_and_csr("host1")
    agent = TlsMaterial(ca.cert_pem, ca.sign_agent_csr(csr, "host1", "192.0.2.11"), key)
    agent.save(root / "agent")
    other_ca = CertificateAuthority.load_or_create(root / "other-ca")
    return {"root": root, "ca": ca, "agent": agent, "manager": ca.manager_material(),
            "other": other_ca.manager_material()}


@pytest.fixture(scope="module")
def agent_socket(pki):
    ns = f"vft{uuid.uuid4().hex[:6]}"
    namespaces.create_switch(ns)  # an empty namespace with lo up is all the agent needs
    sock = pki["root"] / "agent.sock"
    proc = start_agent(ns, sock, pki["root"] / "agent", pki["root"] / "state", timeout_s=20,
                       health_socket=pki["root"] / "health.sock")
    yield sock
    proc.terminate()
    proc.wait(timeout=10)
    namespaces.remove(ns)


def _call(sock: Path, creds: grpc.ChannelCredentials | None):
    target = f"unix://{sock}"
    opts = [("grpc.ssl_target_name_override", "host1")]
    channel = grpc.secure_channel(target, creds, options=opts) if creds else grpc.insecure_channel(target)
    with channel:
        return agent_pb2_grpc.AgentServiceStub(channel).GetNetworkState(agent_pb2.GetNetworkStateRequest(),
                                                                         timeout=5)


def test_manager_certificate_is_accepted(pki, agent_socket):
    state = _call(agent_socket, pki["manager"].channel_credentials())
    assert "lo" in [l.name for l in state.links]


def test_client_without_certificate_is_refused(pki, agent_socket):
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem)
    with pytest.raises(grpc.RpcError) as err:
        _call(agent_socket, creds)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(agent_socket):
    with pytest.raises(grpc.RpcError) as err:
        _call(agent_socket, None)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_certificate_from_another_ca_is_refused(pki, agent_socket):
    other = pki["other"]
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem, private_key=other.key_pem,
                                         certificate_chain=other.cert_pem)
    with pytest.raises(grpc.RpcError) as err:
        _call(agent_socket, creds)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_another_hosts_certificate_may_not_drive_an_agent(pki, agent_socket):
    """Signed by our CA, an agent's certificate — a client's too, since its libvirtd migrates with it: through
    TLS, then denied by name before any method runs."""
    key, csr = make_key_and_csr("host2")
    cert = pki["ca"].sign_agent_csr(csr, "host2", "192.0.2.12")
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem, private_key=key,
                                         certificate_chain=cert)
    with pytest.raises(grpc.RpcError) as err:
        _call(agent_socket, creds)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "manager" in err.value.details()


def test_a_client_certificate_that_is_not_the_managers_is_denied(pki, agent_socket):
    """Even a client certificate of our own CA gets through TLS only to be denied by name."""
    key, csr = make_key_and_csr("intruder")
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = pki["ca"]._issue(x509.load_pem_x509_csr(csr).public_key(), "intruder", [],
                            ExtendedKeyUsageOID.CLIENT_AUTH)
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem, private_key=key,
                                         certificate_chain=cert)
    with pytest.raises(grpc.RpcError) as err:
        _call(agent_socket, creds)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "manager" in err.value.details()
    # and a request it could probe the agent's checks with is denied before any check reads it
    with grpc.secure_channel(f"unix://{agent_socket}", creds,
                             options=[("grpc.ssl_target_name_override", "host1")]) as channel:
        with pytest.raises(grpc.RpcError) as err:
            agent_pb2_grpc.AgentServiceStub(channel).SetupManagementNetwork(
                agent_pb2.SetupManagementNetworkRequest(nic="eth0\x00"), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        raw = channel.unary_unary("/virtfleet.v1.AgentService/GetNetworkState")
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\xff\xff\xff", timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_manager_refuses_an_agent_whose_certificate_names_another_host(pki, agent_socket):
    creds = pki["manager"].channel_credentials()
    with grpc.secure_channel(f"unix://{agent_socket}", creds,
                             options=[("grpc.ssl_target_name_override", "host9")]) as channel:
        with pytest.raises(grpc.RpcError) as err:
            agent_pb2_grpc.AgentServiceStub(channel).GetNetworkState(agent_pb2.GetNetworkStateRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_saving_pki_narrows_an_existing_key_and_directory(tmp_path):
    """Re-enrolling over an old directory must not keep its wider modes (the key is a host's identity)."""
    out = tmp_path / "pki"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    (out / "key.pem").write_bytes(b"old")
    os.chmod(out / "key.pem", 0o644)
    TlsMaterial(b"ca", b"cert", b"new key").save(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    assert (out / "key.pem").read_bytes() == b"new key"
    assert sorted(p.name for p in out.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]


def _intruder(pki) -> grpc.ChannelCredentials:
    """A client certificate our CA signed that is not the manager's."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, csr = make_key_and_csr("intruder")
    cert = pki["ca"]._issue(x509.load_pem_x509_csr(csr).public_key(), "intruder", [],
                            ExtendedKeyUsageOID.CLIENT_AUTH)
    return grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem, private_key=key,
                                        certificate_chain=cert)


def _health_and_reflection(sock: Path, creds: grpc.ChannelCredentials):
    with grpc.secure_channel(f"unix://{sock}", creds, options=[("grpc.ssl_target_name_override", "host1")]) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        listed = next(iter(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)))
        return health, listed


def test_health_and_reflection_answer_only_the_manager(pki, agent_socket):
    health, listed = _health_and_reflection(agent_socket, pki["manager"].channel_credentials())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "virtfleet.v1.AgentService" in [s.name for s in listed.list_services_response.service]
    with pytest.raises(grpc.RpcError) as err:
        _health_and_reflection(agent_socket, _intruder(pki))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with grpc.secure_channel(f"unix://{agent_socket}", _intruder(pki),
                             options=[("grpc.ssl_target_name_override", "host1")]) as ch:
        with pytest.raises(grpc.RpcError) as err:
            next(iter(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_local_health_socket_serves_health_alone(pki, agent_socket):
    sock = pki["root"] / "health.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    with grpc.insecure_channel(f"unix://{sock}") as ch:
        assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            agent_pb2_grpc.AgentServiceStub(ch).GetNetworkState(agent_pb2.GetNetworkStateRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
