"""Channels to host agents: mutual TLS, one cached channel per host.

The agent's certificate must name the host as enrolled (the target name is
overridden to the host name, so unix-socket lab agents are checked the same
way as TCP production agents).
"""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

import grpc

from virtfleet import keepalive
from virtfleet.tls import TlsMaterial, grpc_target
from virtfleet.v1 import agent_pb2_grpc, vm_pb2_grpc

from .errors import FailedPrecondition, InvalidArgument, Unavailable, VirtfleetError

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    *keepalive.CLIENT_OPTIONS,
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class AgentClients:
    def __init__(self, material: TlsMaterial, *, timeout_s: float = 30.0) -> None:
        self._creds = material.channel_credentials()
        self._timeout_s = timeout_s
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._lock = threading.Lock()

    def channel(self, host_name: str, endpoint: str) -> grpc.Channel:
        key = (host_name, endpoint)
        with self._lock:
            ch = self._channels.get(key)
            if ch is None:
                opts = [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", host_name)]
                ch = grpc.secure_channel(grpc_target(endpoint), self._creds, options=opts)
                self._channels[key] = ch
            return ch

    def stub(self, host_name: str, endpoint: str) -> agent_pb2_grpc.AgentServiceStub:
        return agent_pb2_grpc.AgentServiceStub(self.channel(host_name, endpoint))

    def vm_stub(self, host_name: str, endpoint: str) -> vm_pb2_grpc.VmAgentServiceStub:
        """The agent's VM runtime, on the same mutual-TLS channel as its AgentService."""
        return vm_pb2_grpc.VmAgentServiceStub(self.channel(host_name, endpoint))

    def forget(self, host_name: str) -> None:
        with self._lock:
            for key in [k for k in self._channels if k[0] == host_name]:
                self._channels.pop(key).close()

    def call(self, host_name: str, endpoint: str, fn: Callable[[agent_pb2_grpc.AgentServiceStub, float], T]) -> T:
        """Run one unary call and translate the agent's status into our error types."""
        try:
            return fn(self.stub(host_name, endpoint), self._timeout_s)
        except grpc.RpcError as exc:
            raise translate_agent_error(host_name, exc) from None

    def call_vm(self, host_name: str, endpoint: str,
                fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], T]) -> T:
        """As `call`, on the agent's VmAgentService."""
        try:
            return fn(self.vm_stub(host_name, endpoint), self._timeout_s)
        except grpc.RpcError as exc:
            raise translate_agent_error(host_name, exc) from None

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()


def translate_agent_error(host_name: str, exc: grpc.RpcError) -> VirtfleetError:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, msg = details.partition(": ")
        return InvalidArgument(field if msg else "request", msg or details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(f"host {host_name}: {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"the agent of host {host_name} is unreachable: {details}")
    err = VirtfleetError(f"host {host_name}: {details}")
    err.code = code
    return err
