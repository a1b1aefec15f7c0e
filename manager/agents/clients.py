"""Channels to host agents: mutual TLS, one cache of channels per host, one error mapping.

Pinning: the agent's certificate must carry the host's pin name, the one DNS
name only the certificate the manager issued it has (manager/pki.py): the
channel's target name is overridden to that name, so TLS itself refuses any
other certificate, even one the same CA signed for the same host (an old one
of a removed or re-enrolled host), on every connection and reconnection — and
unix-socket lab agents are checked the same way as TCP production agents.
A host whose certificate was revoked, or whose enrollment is pending, has no
pin: it is not called at all (blocking calls fail UNAVAILABLE saying why; the
monitor's stream asks for a name no certificate has, and retries). `repin`
changes a host's pin (renewal, re-enrollment, revocation) and drops its
channels, so the next call connects under the new name.

Certificates also change under live channels without anything being revoked
(renewal, the manager's own client-certificate rotation, a CA rollover):
`repin(..., graceful=True)` and `use_material` take the channels out of the
cache so the next call opens a new one, but do not close them at once — a call
still running on one finishes there. Retired blocking channels are closed once
no call can still be on them (past the longest cap); retired stream channels
when their host is forgotten or the clients close (the monitor's open stream
keeps its connection; it reconnects through the cache).

Both kinds of channel live here: the blocking ones the services call through,
and the asyncio ones the monitor follows each host's state stream on. One
cache means one set of credentials and options, and one place (`forget`) that
lets go of a removed host.

Deadlines: a call made while a request is served (virtfleet.deadline) gets the
caller's remaining time less a margin, never more than the client's cap, and is
not made at all once the caller gave up. When the caller's deadline, not the cap,
ends the call, the error says so (DEADLINE_EXCEEDED), rather than calling the
agent unreachable. Clean-ups (`for_caller=False`) get the cap whatever the
caller did: they put back what a failed change left, which must not depend on
who is still waiting.

VM changes in flight are bounded (`vm_change`): each holds an API worker thread
while its agent works, so a few stuck guests must not take every worker; past
the bound a change is refused RESOURCE_EXHAUSTED at once and reads still run.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import grpc

from virtfleet import deadline, keepalive
from virtfleet.errors import DeadlineExceeded, ResourceExhausted, Unavailable, VirtfleetError
from virtfleet.rpc import error_from_call
from virtfleet.tls import TlsMaterial, grpc_target
from virtfleet.v1 import agent_pb2_grpc, vm_pb2_grpc

from ..store.hosts import HostPin

T = TypeVar("T")
log = logging.getLogger(__name__)
PinLookup = Callable[[str], "HostPin | None"]   # a host's stored pin (the database), asked on a cache miss
NO_CERTIFICATE = "no-trusted-certificate.pin.virtfleet.invalid"   # a name no certificate carries

_CHANNEL_OPTIONS = [
    *keepalive.CLIENT_OPTIONS,
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # One connection per host even when endpoints coincide (the simulator serves many hosts on one socket).
    ("grpc.use_local_subchannel_pool", 1),
]

_Key = tuple[str, str]  # (host name, endpoint)
DEFAULT_VM_CHANGES_MAX = 12  # of the API server's 16 workers: four stay free for reads whatever the guests do


def agent_error(host_name: str, exc: grpc.RpcError, *, field_prefix: str = "") -> VirtfleetError:
    """A failed agent call as the manager raises it: the agent's class, its field path kept.

    A call that never reached the agent (no connection, no answer in time) is
    the host being unreachable, whatever the transport said.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"the agent of host {host_name} is unreachable: {exc.details() or code.name}")
    return error_from_call(exc, field_prefix=field_prefix, where=f"host {host_name}")


class NoTrustedCertificate(Unavailable):
    """The manager trusts no certificate for this host: revoked, or its enrollment is pending."""


def target_name(host_name: str, pin: HostPin | None) -> str:
    """The name TLS must find in the host's certificate.

    Hosts enrolled before pinning (db/010: no stored certificate) are still checked by their host
    name, which any certificate the CA issued for that name has; enrolling them again pins them.
    """
    if pin is None:
        raise NoTrustedCertificate(f"host {host_name} does not exist")
    if pin.status == "pending":
        raise NoTrustedCertificate(f"host {host_name} has not enrolled yet (its token was not used)")
    if pin.status == "revoked" or (pin.has_certificate and not pin.pin):
        raise NoTrustedCertificate(f"the certificate of host {host_name} was revoked: enroll the host again "
                                   "(`virtfleet host add`, then `virtfleet-agent enroll` on the host)")
    return pin.pin or host_name


class AgentClients:
    def __init__(self, material: TlsMaterial, *, timeout_s: float = 30.0,
                 vm_changes_max: int = DEFAULT_VM_CHANGES_MAX, pins: PinLookup | None = None) -> None:
        """Without `pins` (tools talking to lab agents directly), each host is checked by its name."""
        self._lookup = pins
        self._pins: dict[str, str] = {}
        self._creds = material.channel_credentials()
        self._material = material
        self._retired: list[tuple[float, str, grpc.Channel]] = []
        self._retired_streams: list[tuple[str, grpc.aio.Channel, asyncio.AbstractEventLoop]] = []
        self._timeout_s = timeout_s
        self._vm_changes_max = vm_changes_max
        self._vm_changes = threading.BoundedSemaphore(vm_changes_max)
        self._channels: dict[_Key, grpc.Channel] = {}
        self._streams: dict[_Key, tuple[grpc.aio.Channel, asyncio.AbstractEventLoop]] = {}
        self._lock = threading.Lock()

    def _options(self, host_name: str) -> list[tuple[str, object]]:
        return [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", self._pin(host_name))]

    def _pin(self, host_name: str) -> str:
        """The cached pin, else the stored one; raises NoTrustedCertificate."""
        with self._lock:
            pin = self._pins.get(host_name)
        if pin is not None:
            return pin
        if self._lookup is None:
            return host_name
        pin = target_name(host_name, self._lookup(host_name))
        with self._lock:
            return self._pins.setdefault(host_name, pin)

    def repin(self, host_name: str, pin: str | None, *, graceful: bool = False) -> None:
        """The host's certificate changed (renewed, enrolled again) or was revoked (None): its channels
        are closed, and the next call connects asking TLS for the new pin (with None, the stored state
        is read again: a revoked host is not called).

        `graceful` (a renewal: the old certificate is still trusted and still served) retires the
        channels instead: calls running on them finish there."""
        with self._lock:
            if pin is None:
                self._pins.pop(host_name, None)
            else:
                self._pins[host_name] = pin
            if graceful and pin is not None:
                self._retire(lambda key: key[0] == host_name)
                return
        self._close_channels(host_name)

    # -- certificates changing under live channels -----------------------------------

    @property
    def material(self) -> TlsMaterial:
        """The manager's client key, certificate and trusted CAs that new channels use."""
        return self._material

    def use_material(self, material: TlsMaterial) -> None:
        """New client certificate or trusted CAs for every channel opened from now on."""
        with self._lock:
            self._material = material
            self._creds = material.channel_credentials()
            self._retire(lambda key: True)

    def _retire(self, which: Callable[[_Key], bool]) -> None:
        """Under the lock: out of the cache; blocking channels older than any call's cap are closed now."""
        now = time.monotonic()
        for key in [k for k in self._channels if which(k)]:
            self._retired.append((now, key[0], self._channels.pop(key)))
        for key in [k for k in self._streams if which(k)]:
            channel, loop = self._streams.pop(key)
            self._retired_streams.append((key[0], channel, loop))
        keep_s = 4 * self._timeout_s + 600  # longer than any call's cap plus its extra wait
        old = [ch for t, _, ch in self._retired if now - t > keep_s]
        self._retired = [r for r in self._retired if now - r[0] <= keep_s]
        for channel in old:
            channel.close()

    # -- blocking calls (services) ---------------------------------------------------

    def channel(self, host_name: str, endpoint: str) -> grpc.Channel:
        key = (host_name, endpoint)
        with self._lock:
            ch = self._channels.get(key)
        if ch is not None:
            return ch
        options = self._options(host_name)   # may ask the database: not under the lock
        with self._lock:
            ch = self._channels.get(key)
            if ch is None:
                ch = grpc.secure_channel(grpc_target(endpoint), self._creds, options=options)
                self._channels[key] = ch
            return ch

    def stub(self, host_name: str, endpoint: str) -> agent_pb2_grpc.AgentServiceStub:
        return agent_pb2_grpc.AgentServiceStub(self.channel(host_name, endpoint))

    def vm_stub(self, host_name: str, endpoint: str) -> vm_pb2_grpc.VmAgentServiceStub:
        """The agent's VM runtime, on the same mutual-TLS channel as its AgentService."""
        return vm_pb2_grpc.VmAgentServiceStub(self.channel(host_name, endpoint))

    def call(self, host_name: str, endpoint: str, fn: Callable[[agent_pb2_grpc.AgentServiceStub, float], T], *,
             field_prefix: str = "", extra_s: float = 0.0, for_caller: bool = True) -> T:
        """Run one unary call with the timeout `fn` is given; a failure is raised as `agent_error` makes it.

        `extra_s` is added to the cap for a call that waits on purpose (a guest's shutdown).
        """
        return self._run(host_name, field_prefix, lambda t: fn(self.stub(host_name, endpoint), t),
                         self._timeout_s + extra_s, for_caller)

    def call_vm(self, host_name: str, endpoint: str, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], T], *,
                field_prefix: str = "", extra_s: float = 0.0, for_caller: bool = True) -> T:
        """As `call`, on the agent's VmAgentService."""
        return self._run(host_name, field_prefix, lambda t: fn(self.vm_stub(host_name, endpoint), t),
                         self._timeout_s + extra_s, for_caller)

    @staticmethod
    def _run(host_name: str, field_prefix: str, call: Callable[[float], T], cap_s: float, for_caller: bool) -> T:
        what = f"calling host {host_name}"
        timeout, callers = deadline.budget(cap_s, what) if for_caller else (cap_s, False)
        try:
            return call(timeout)
        except grpc.RpcError as exc:
            if callers and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded(f"the request's deadline passed while host {host_name} was working on it "
                                       "(the agent starts no change after that)") from None
            raise agent_error(host_name, exc, field_prefix=field_prefix) from None

    @contextmanager
    def vm_change(self, what: str) -> Iterator[None]:
        """One of the bounded VM changes that call agents; refused at once when all are taken."""
        if not self._vm_changes.acquire(blocking=False):
            raise ResourceExhausted(f"the manager is already waiting on agents for {self._vm_changes_max} VM changes "
                                    f"(its limit, vm_changes_max); {what} was not started: retry when some are done")
        try:
            yield
        finally:
            self._vm_changes.release()

    # -- asyncio channels (the monitor's streams) ------------------------------------

    def aio_channel(self, host_name: str, endpoint: str) -> grpc.aio.Channel:
        """A channel bound to the running event loop; call it from that loop."""
        key = (host_name, endpoint)
        with self._lock:
            held = self._streams.get(key)
        if held is not None:
            return held[0]
        try:
            options = self._options(host_name)
        except Exception as exc:  # noqa: BLE001 - revoked, pending, or the database away: retried later
            log.info("not connecting to host %s: %s", host_name, getattr(exc, "message", exc))
            # Not cached: the stream's next attempt looks the pin up again.
            return grpc.aio.secure_channel(grpc_target(endpoint), self._creds,
                                           options=[*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override",
                                                                         NO_CERTIFICATE)])
        with self._lock:
            held = self._streams.get(key)
            if held is None:
                channel = grpc.aio.secure_channel(grpc_target(endpoint), self._creds, options=options)
                held = self._streams[key] = (channel, asyncio.get_running_loop())
            return held[0]

    async def close_aio(self) -> None:
        """Close the asyncio channels of the running loop (the monitor, as it stops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = [key for key, (_, owner) in self._streams.items() if owner is loop]
            channels = [self._streams.pop(key)[0] for key in mine]
            channels += [ch for _, ch, owner in self._retired_streams if owner is loop]
            self._retired_streams = [r for r in self._retired_streams if r[2] is not loop]
        for channel in channels:
            await channel.close()

    # -- letting go ------------------------------------------------------------------

    def forget(self, host_name: str) -> None:
        """Close every channel to a host (it was removed) and drop its pin."""
        self.repin(host_name, None)

    def _close_channels(self, host_name: str) -> None:
        with self._lock:
            channels = [self._channels.pop(k) for k in [k for k in self._channels if k[0] == host_name]]
            streams = [self._streams.pop(k) for k in [k for k in self._streams if k[0] == host_name]]
            channels += [ch for _, name, ch in self._retired if name == host_name]
            self._retired = [r for r in self._retired if r[1] != host_name]
            streams += [(ch, loop) for name, ch, loop in self._retired_streams if name == host_name]
            self._retired_streams = [r for r in self._retired_streams if r[0] != host_name]
        for channel in channels:
            channel.close()
        for channel, loop in streams:
            _close_on(loop, channel)

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
            streams, self._streams = list(self._streams.values()), {}
            channels += [ch for _, _, ch in self._retired]
            streams += [(ch, loop) for _, ch, loop in self._retired_streams]
            self._retired, self._retired_streams = [], []
        for channel in channels:
            channel.close()
        for channel, loop in streams:
            _close_on(loop, channel)


def _close_on(loop: asyncio.AbstractEventLoop, channel: grpc.aio.Channel) -> None:
    """An asyncio channel closes on its own loop; a loop that is gone took its channels with it."""
    if loop.is_closed() or not loop.is_running():
        return
    asyncio.run_coroutine_threadsafe(channel.close(), loop)
