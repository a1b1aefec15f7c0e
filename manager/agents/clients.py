"""Channels to host agents: mutual TLS, one cache of channels per host, one error mapping.

The agent's certificate must name the host as enrolled (the target name is
overridden to the host name, so unix-socket lab agents are checked the same
way as TCP production agents).

Both kinds of channel live here: the blocking ones the services call through,
and the asyncio ones the monitor follows each host's state stream on. One
cache means one set of credentials and options, and one place (`forget`) that
lets go of a removed host.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable, TypeVar

import grpc

from virtfleet import keepalive
from virtfleet.errors import Unavailable, VirtfleetError
from virtfleet.rpc import error_from_call
from virtfleet.tls import TlsMaterial, grpc_target
from virtfleet.v1 import agent_pb2_grpc, vm_pb2_grpc

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    *keepalive.CLIENT_OPTIONS,
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # One connection per host even when endpoints coincide (the simulator serves many hosts on one socket).
    ("grpc.use_local_subchannel_pool", 1),
]

_Key = tuple[str, str]  # (host name, endpoint)


def agent_error(host_name: str, exc: grpc.RpcError, *, field_prefix: str = "") -> VirtfleetError:
    """A failed agent call as the manager raises it: the agent's class, its field path kept.

    A call that never reached the agent (no connection, no answer in time) is
    the host being unreachable, whatever the transport said.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"the agent of host {host_name} is unreachable: {exc.details() or code.name}")
    return error_from_call(exc, field_prefix=field_prefix, where=f"host {host_name}")


class AgentClients:
    def __init__(self, material: TlsMaterial, *, timeout_s: float = 30.0) -> None:
        self._creds = material.channel_credentials()
        self._timeout_s = timeout_s
        self._channels: dict[_Key, grpc.Channel] = {}
        self._streams: dict[_Key, tuple[grpc.aio.Channel, asyncio.AbstractEventLoop]] = {}
        self._lock = threading.Lock()

    def _options(self, host_name: str) -> list[tuple[str, object]]:
        return [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", host_name)]

    # -- blocking calls (services) ---------------------------------------------------

    def channel(self, host_name: str, endpoint: str) -> grpc.Channel:
        key = (host_name, endpoint)
        with self._lock:
            ch = self._channels.get(key)
            if ch is None:
                ch = grpc.secure_channel(grpc_target(endpoint), self._creds, options=self._options(host_name))
                self._channels[key] = ch
            return ch

    def stub(self, host_name: str, endpoint: str) -> agent_pb2_grpc.AgentServiceStub:
        return agent_pb2_grpc.AgentServiceStub(self.channel(host_name, endpoint))

    def vm_stub(self, host_name: str, endpoint: str) -> vm_pb2_grpc.VmAgentServiceStub:
        """The agent's VM runtime, on the same mutual-TLS channel as its AgentService."""
        return vm_pb2_grpc.VmAgentServiceStub(self.channel(host_name, endpoint))

    def call(self, host_name: str, endpoint: str, fn: Callable[[agent_pb2_grpc.AgentServiceStub, float], T], *,
             field_prefix: str = "") -> T:
        """Run one unary call; a failure is raised as `agent_error` makes it."""
        return self._run(host_name, field_prefix, lambda: fn(self.stub(host_name, endpoint), self._timeout_s))

    def call_vm(self, host_name: str, endpoint: str, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], T], *,
                field_prefix: str = "") -> T:
        """As `call`, on the agent's VmAgentService."""
        return self._run(host_name, field_prefix, lambda: fn(self.vm_stub(host_name, endpoint), self._timeout_s))

    @staticmethod
    def _run(host_name: str, field_prefix: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as exc:
            raise agent_error(host_name, exc, field_prefix=field_prefix) from None

    # -- asyncio channels (the monitor's streams) ------------------------------------

    def aio_channel(self, host_name: str, endpoint: str) -> grpc.aio.Channel:
        """A channel bound to the running event loop; call it from that loop."""
        key = (host_name, endpoint)
        with self._lock:
            held = self._streams.get(key)
            if held is None:
                channel = grpc.aio.secure_channel(grpc_target(endpoint), self._creds, options=self._options(host_name))
                held = self._streams[key] = (channel, asyncio.get_running_loop())
            return held[0]

    async def close_aio(self) -> None:
        """Close the asyncio channels of the running loop (the monitor, as it stops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = [key for key, (_, owner) in self._streams.items() if owner is loop]
            channels = [self._streams.pop(key)[0] for key in mine]
        for channel in channels:
            await channel.close()

    # -- letting go ------------------------------------------------------------------

    def forget(self, host_name: str) -> None:
        """Close every channel to a host (it was removed)."""
        with self._lock:
            channels = [self._channels.pop(k) for k in [k for k in self._channels if k[0] == host_name]]
            streams = [self._streams.pop(k) for k in [k for k in self._streams if k[0] == host_name]]
        for channel in channels:
            channel.close()
        for channel, loop in streams:
            _close_on(loop, channel)

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
            streams, self._streams = list(self._streams.values()), {}
        for channel in channels:
            channel.close()
        for channel, loop in streams:
            _close_on(loop, channel)


def _close_on(loop: asyncio.AbstractEventLoop, channel: grpc.aio.Channel) -> None:
    """An asyncio channel closes on its own loop; a loop that is gone took its channels with it."""
    if loop.is_closed() or not loop.is_running():
        return
    asyncio.run_coroutine_threadsafe(channel.close(), loop)
