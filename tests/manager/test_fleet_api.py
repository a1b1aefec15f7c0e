"""The fleet API over a real socket: status codes and the fields they name."""
from __future__ import annotations

import grpc
import psycopg
import pytest

from virtfleet.rpc import field_violations
from virtfleet.enroll import make_key_and_csr
from virtfleet.v1 import fleet_pb2


def _enroll(manager, name="host1", address="192.0.2.11", **kw):
    _, csr = make_key_and_csr(name or "unnamed")
    return manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address=address, csr_pem=csr, **kw))


def _host_rows(manager):
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return conn.execute("SELECT name FROM hosts").fetchall()


def test_enrolled_host_is_listed_with_its_certificate_fingerprint(manager):
    reply = _enroll(manager)
    hosts = manager.fleet.ListHosts(fleet_pb2.ListHostsRequest()).hosts
    assert [h.name for h in hosts] == ["host1"]
    assert hosts[0].endpoint == "192.0.2.11:54321"
    assert hosts[0].cluster == "Default" and hosts[0].datacenter == "Default"
    assert hosts[0].cert_fingerprint == reply.host.cert_fingerprint
    assert reply.certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_unknown_host_is_not_found(manager):
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="nosuchhost"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nosuchhost" in err.value.details()


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("name", {"name": "Bad_Name!"}),
        ("name", {"name": ""}),
        ("address", {"address": "192.0.2.300"}),
        ("address", {"address": "host.example"}),
        ("endpoint", {"endpoint": "nocolon"}),
    ],
)
def test_malformed_host_input_names_the_field_and_changes_nothing(manager, field, kwargs):
    args = {"name": "host1", "address": "192.0.2.11", **kwargs}
    with pytest.raises(grpc.RpcError) as err:
        _enroll(manager, **args)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == [field]
    assert _host_rows(manager) == []


def test_garbage_csr_is_refused(manager):
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name="host1", address="192.0.2.11",
                                                             csr_pem=b"not a csr"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["csr_pem"]


def test_enrolling_the_same_name_or_address_twice_is_refused(manager):
    _enroll(manager)
    for kwargs in ({"address": "192.0.2.99"}, {"name": "host2"}):
        with pytest.raises(grpc.RpcError) as err:
            _enroll(manager, **{"name": "host1", "address": "192.0.2.11", **kwargs})
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _host_rows(manager) == [("host1",)]


def test_unreachable_agent_is_unavailable_not_a_crash(manager):
    _enroll(manager, endpoint="unix:///nonexistent/agent.sock")
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostManagementNetwork(fleet_pb2.SetupHostManagementNetworkRequest(name="host1"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "host1" in err.value.details()


def test_health_and_reflection_are_served(manager):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health = health_pb2_grpc.HealthStub(manager.channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(manager.channel)
    replies = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "virtfleet.v1.FleetService" in names
