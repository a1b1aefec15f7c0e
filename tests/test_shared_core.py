"""The shared core both ends import: one MAC parser, one status mapping, one door check."""
from __future__ import annotations

import tempfile
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from virtfleet import macaddr, rpc
from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound, shown
from virtfleet.v1 import hostnet_pb2


@pytest.mark.parametrize("text", ["52:54:00:00:00:01", "52-54-00-00-00-01", "525400000001", "52:54:00:00:00:01 ",
                                  "5254.0000.0001",
                                  "52:54:00:00:00:01".upper()])
def test_every_form_people_type_is_one_canonical_mac(text):
    assert macaddr.canonical(text) == "52:54:00:00:00:01"


@pytest.mark.parametrize("text", ["52:54:00:00:00", "52:54-00:00:00:01", "52:54:00:00:00:0g", "", "5254.0000.000"])
def test_what_is_not_a_mac_is_refused_naming_the_field(text):
    with pytest.raises(InvalidArgument) as err:
        macaddr.unicast_field(text, "nics[0].mac")
    assert err.value.field == "nics[0].mac"


def test_a_multicast_mac_is_refused_for_a_vnic():
    with pytest.raises(InvalidArgument, match="multicast"):
        macaddr.unicast_field("01:00:5e:00:00:01", "mac")


def test_echoed_values_are_cut_so_the_status_stays_small():
    assert len(shown("x" * 1_000_000)) < 80
    err = InvalidArgument("name", "x" * 100_000)
    status = rpc.to_status(err)
    assert len(status.details) < 3000


def test_nul_bytes_and_huge_text_are_refused_at_the_door_with_their_path():
    req = hostnet_pb2.SetupNetworksRequest(networks=[hostnet_pb2.NetworkAttachment(network="a", nic="b\x00")])
    with pytest.raises(InvalidArgument) as err:
        rpc.check_request(req)
    assert err.value.field == "networks[0].nic"
    with pytest.raises(InvalidArgument) as err:
        rpc.check_request(hostnet_pb2.SetupNetworksRequest(remove_networks=["ok", "x" * (rpc.MAX_TEXT + 1)]))
    assert err.value.field == "remove_networks[1]"
    rpc.check_request(hostnet_pb2.SetupNetworksRequest(remove_networks=["ok"]))


class _Raising:
    """A servicer whose one method raises what the test hands it."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    @rpc.translating_errors
    def Call(self, request, context):
        if self.error is not None:
            raise self.error
        return empty_pb2.Empty()


@pytest.fixture
def raising_server():
    servicer = _Raising()
    handler = grpc.method_handlers_generic_handler("test.Raising", {
        "Call": grpc.unary_unary_rpc_method_handler(servicer.Call, request_deserializer=empty_pb2.Empty.FromString,
                                                    response_serializer=empty_pb2.Empty.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    with tempfile.TemporaryDirectory() as d:
        target = f"unix://{Path(d) / 'sock'}"
        server.add_insecure_port(target)
        server.start()
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary("/test.Raising/Call", request_serializer=empty_pb2.Empty.SerializeToString,
                                       response_deserializer=empty_pb2.Empty.FromString)
            yield servicer, call
        server.stop(None)


def _fail(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(empty_pb2.Empty(), timeout=10)
    return err.value


def test_a_field_violation_crosses_the_wire_and_keeps_its_path_under_the_callers_prefix(raising_server):
    servicer, call = raising_server
    servicer.error = InvalidArgument("qbg.managerid", "managerid 300 is outside 1-255")
    exc = _fail(call)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc.field_violations(exc) == [("qbg.managerid", "managerid 300 is outside 1-255")]
    back = rpc.error_from_call(exc, field_prefix="nics[2]")
    assert isinstance(back, InvalidArgument)
    assert (back.field, back.description) == ("nics[2].qbg.managerid", "managerid 300 is outside 1-255")


@pytest.mark.parametrize("error, cls", [(NotFound("no VM vm1"), NotFound),
                                        (FailedPrecondition("eth1 is a port of br0"), FailedPrecondition)])
def test_every_error_comes_back_as_its_own_class(raising_server, error, cls):
    servicer, call = raising_server
    servicer.error = error
    back = rpc.error_from_call(_fail(call), where="host h1")
    assert type(back) is cls and back.code == error.code and back.message == f"host h1: {error.message}"


def test_an_unexpected_exception_is_internal_without_its_text(raising_server):
    servicer, call = raising_server
    servicer.error = RuntimeError("secret detail")
    exc = _fail(call)
    assert exc.code() == grpc.StatusCode.INTERNAL and "secret" not in (exc.details() or "")


class _Health(health_pb2_grpc.HealthServicer):
    @rpc.translating_errors
    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def test_garbage_bytes_are_invalid_argument_not_internal():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc.add_service(server, health_pb2_grpc.add_HealthServicer_to_server, _Health())
    with tempfile.TemporaryDirectory() as d:
        target = f"unix://{Path(d) / 'sock'}"
        server.add_insecure_port(target)
        server.start()
        try:
            with grpc.insecure_channel(target) as channel:
                raw = channel.unary_unary("/grpc.health.v1.Health/Check")
                with pytest.raises(grpc.RpcError) as err:
                    raw(b"\xff\xff\xff\xff", timeout=10)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "grpc.health.v1.HealthCheckRequest" in err.value.details()
                good = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert good.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            server.stop(None)
