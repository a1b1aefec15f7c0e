"""The interceptor on a real gRPC server: refusal before the servicer, what the recorder is told, streams cut
when the caller loses its right, and the identity and request id the servicer sees."""
from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from manager.auth.context import Caller, Unauthenticated, current_identity, current_request_id
from manager.auth.identity import Identity, Kind, Role
from manager.auth.interceptor import AuthorizingInterceptor

CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"


class ByName:
    """Who is calling: metadata `who` names an entry of `people`; `revoked` names those revoked since."""

    def __init__(self) -> None:
        self.people = {"ann": Role.AUDITOR, "nobody": None}
        self.revoked: set[str] = set()

    def resolve(self, context):
        who = dict(context.invocation_metadata()).get("who")
        if who not in self.people:
            raise Unauthenticated("say who you are")
        identity = Identity(who, Kind.CERT, self.people[who])
        return Caller(identity, lambda: None if who in self.revoked else identity)


class Calls:
    def __init__(self, broken: bool = False) -> None:
        self.seen: list[dict] = []
        self.broken = broken

    def record_call(self, **call) -> None:
        self.seen.append(call)
        if self.broken:
            raise RuntimeError("the events table is on fire")


class Health(health.HealthServicer):
    """The real health servicer, noting whom each Check ran for."""

    def __init__(self) -> None:
        super().__init__()
        self.ran_for: list[tuple[str, str]] = []

    def Check(self, request, context):
        self.ran_for.append((current_identity().name, current_request_id()))
        return super().Check(request, context)


@pytest.fixture
def served(request) -> Iterator[tuple[grpc.Channel, ByName, Calls, Health]]:
    resolver, calls, servicer = ByName(), Calls(broken=getattr(request, "param", False)), Health()
    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[AuthorizingInterceptor(resolver, calls)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    with tempfile.TemporaryDirectory() as d:
        target = f"unix://{Path(d) / 'sock'}"
        server.add_insecure_port(target)
        server.start()
        with grpc.insecure_channel(target) as channel:
            yield channel, resolver, calls, servicer
        server.stop(None)


def test_an_allowed_call_runs_with_its_identity_and_request_id_and_is_recorded(served):
    channel, _, calls, servicer = served
    reply, call = health_pb2_grpc.HealthStub(channel).Check.with_call(
        health_pb2.HealthCheckRequest(), metadata=[("who", "ann"), ("x-request-id", "req-1")])
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert servicer.ran_for == [("ann", "req-1")]
    assert ("x-request-id", "req-1") in call.trailing_metadata()
    [seen] = calls.seen
    assert (seen["identity"].name, seen["method"], seen["code"], seen["request_id"]) == \
        ("ann", CHECK, grpc.StatusCode.OK, "req-1")
    assert isinstance(seen["request"], health_pb2.HealthCheckRequest) and seen["duration_s"] >= 0


def test_a_refused_call_never_reaches_the_servicer_and_is_recorded(served):
    channel, _, calls, servicer = served
    with pytest.raises(grpc.RpcError) as refused:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), metadata=[("who", "nobody")])
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == "needs role auditor; admin nobody has no role"
    with pytest.raises(grpc.RpcError) as unknown:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert servicer.ran_for == []
    assert [(c["code"], c["identity"].name if c["identity"] else None) for c in calls.seen] == \
        [(grpc.StatusCode.PERMISSION_DENIED, "nobody"), (grpc.StatusCode.UNAUTHENTICATED, None)]
    assert calls.seen[0]["message"] == "needs role auditor; admin nobody has no role"


@pytest.mark.parametrize("served", [True], indirect=True)
def test_a_broken_recorder_never_fails_a_call(served):
    channel, _, calls, _ = served
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), metadata=[("who", "ann")])
    assert reply.status == health_pb2.HealthCheckResponse.SERVING and len(calls.seen) == 1


def test_a_stream_ends_at_the_next_item_once_its_caller_is_revoked(served):
    channel, resolver, calls, servicer = served
    stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="svc"),
                                                      metadata=[("who", "ann")])
    first = next(stream)
    assert first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    resolver.revoked.add("ann")
    servicer.set("svc", health_pb2.HealthCheckResponse.SERVING)   # the next item: checked before it goes out
    with pytest.raises(grpc.RpcError) as cut:
        for _ in stream:
            pass
    assert cut.value.code() == grpc.StatusCode.PERMISSION_DENIED and "revoked" in cut.value.details()
    # The recorder hears of the stream once its generator has ended on the server (just after the status).
    heard = threading.Event()
    while not any(c["method"] == WATCH for c in calls.seen):
        heard.wait(0.01)
    [watch] = [c for c in calls.seen if c["method"] == WATCH]
    assert watch["code"] == grpc.StatusCode.PERMISSION_DENIED
