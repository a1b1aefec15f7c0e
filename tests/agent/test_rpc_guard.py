"""One guard at every agent door (agent.rpc.guard): the manager's certificate only, failures as their status.

The real agent's threaded services are checked in test_vm_service and
test_mutual_tls; here the fleet simulator's asyncio service, which passes the
same guard, is called with a certificate of our CA that is not the manager's.
"""
from __future__ import annotations


import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.sim.fleet import FleetSimulator
from agent.sim.pki import fleet_material
from manager.pki import CertificateAuthority
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import NOT_MANAGER
from virtfleet.v1 import agent_pb2, agent_pb2_grpc

HOST = "sim00001"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    ca = CertificateAuthority.load_or_create(root / "ca")
    with FleetSimulator(fleet_material(ca.key, ca.cert, [HOST]), root / "sim.sock", hosts=1) as sim:
        yield {"ca": ca, "sim": sim}


def _stub(fleet, creds: grpc.ChannelCredentials) -> tuple[grpc.Channel, agent_pb2_grpc.AgentServiceStub]:
    channel = grpc.secure_channel(fleet["sim"].endpoint, creds, options=[("grpc.ssl_target_name_override", HOST)])
    return channel, agent_pb2_grpc.AgentServiceStub(channel)


def _intruder(ca: CertificateAuthority) -> grpc.ChannelCredentials:
    key, csr = make_key_and_csr("intruder")
    cert = ca._issue(x509.load_pem_x509_csr(csr).public_key(), "intruder", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem, private_key=key, certificate_chain=cert)


def test_another_certificate_of_our_ca_is_denied_on_unary_and_streaming_calls(fleet):
    channel, stub = _stub(fleet, _intruder(fleet["ca"]))
    metadata = (("x-virtfleet-host", HOST),)
    with channel:
        with pytest.raises(grpc.RpcError) as unary:
            stub.GetNetworkState(agent_pb2.GetNetworkStateRequest(), metadata=metadata, timeout=10)
        with pytest.raises(grpc.RpcError) as streaming:
            next(iter(stub.WatchNetworkState(agent_pb2.WatchNetworkStateRequest(), metadata=metadata, timeout=10)))
    for err in (unary.value, streaming.value):
        assert (err.code(), err.details()) == (grpc.StatusCode.PERMISSION_DENIED, NOT_MANAGER)


def test_the_managers_certificate_gets_through_and_errors_keep_their_status(fleet):
    channel, stub = _stub(fleet, fleet["ca"].manager_material().channel_credentials())
    with channel:
        state = stub.GetNetworkState(agent_pb2.GetNetworkStateRequest(), metadata=(("x-virtfleet-host", HOST),),
                                     timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetCapabilities(agent_pb2.GetCapabilitiesRequest(), metadata=(("x-virtfleet-host", "nohost"),),
                                 timeout=10)
    assert state.hostname == HOST
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nohost" in err.value.details()
