"""Keeps every host's current network state in memory, fed by its agent's stream.

A thousand hosts mostly sit idle on an open stream, so one asyncio loop
(grpc.aio) in one thread follows them all instead of a thread per host. Each
host's stream starts with a snapshot, then carries deltas; after a reconnect
the monitor asks to resume from the (epoch, sequence) it holds and the agent
answers with just the missed changes, or a snapshot when it cannot.

Memory is the truth for the audit (parsing a thousand JSON reports back out of
PostgreSQL would cost more than the audit itself); the database gets the
newest report of each changed host in one batched transaction per flush, so
reports survive the manager and the CLI can read them.

Agents send an empty delta after `heartbeat` quiet seconds, so "last report"
keeps moving for a quiet host; a host whose last report is older than
`unreachable_after_s` is marked unreachable.

A thousand hosts' states are a few hundred thousand long-lived objects; the
cyclic garbage collector's full passes over them paused the loop for 200-300
ms (measured: the p99 of kernel-change-to-manager latency). Held states are
therefore moved out of its way (gc.freeze) once new ones have arrived;
reference counting still frees each state when it is replaced, and nothing
here builds reference cycles.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.json_format import MessageToDict
from psycopg_pool import ConnectionPool

from virtfleet import keepalive
from virtfleet.hostnet import netdelta
from virtfleet.tls import TlsMaterial, grpc_target
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, netstate_pb2

from .store import hosts as host_store

log = logging.getLogger(__name__)

# The simulator serves many hosts on one socket and tells them apart by this; real agents ignore it.
HOST_METADATA = "x-virtfleet-host"

_CHANNEL_OPTIONS = [
    *keepalive.CLIENT_OPTIONS,
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.use_local_subchannel_pool", 1),  # one connection per host, even when endpoints coincide
]


@dataclass(frozen=True)
class HostState:
    """What the manager holds of one host: its state, where in its stream it is, when it last spoke."""

    name: str
    state: netstate_pb2.NetworkState
    epoch: str
    sequence: int
    reported_at: dt.datetime      # wall clock, for people
    reported_mono: float          # monotonic, for the unreachable limit
    reachable: bool = True


Listener = Callable[[HostState, agent_pb2.NetworkStateEvent], None]


class HostMonitor:
    def __init__(self, pool: ConnectionPool, material: TlsMaterial, *, unreachable_after_s: float = 30.0,
                 flush_interval_s: float = 0.5) -> None:
        self._pool = pool
        self._creds = material.channel_credentials()
        self.unreachable_after_s = unreachable_after_s
        self._flush_interval_s = flush_interval_s
        self._hosts: dict[str, HostState] = {}
        self._dirty: set[str] = set()     # new state to write
        self._heard: set[str] = set()     # reported (a heartbeat is enough): last_report_at to move on
        self._unreachable: set[str] = set()          # hosts silent past the limit
        self._unreachable_unwritten: set[str] = set()  # ... not yet marked so in the database
        self._tasks: dict[str, asyncio.Task] = {}
        self._listeners: list[Listener] = []
        self._never_reported_since: dict[str, float] = {}
        self.events_ingested = 0
        self._states_replaced = 0
        self.changes_ingested = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="host-monitor", daemon=True)
        self._thread.start()
        self._call(self._background())

    # -- what others use -------------------------------------------------------------

    def start_all(self) -> None:
        with self._pool.connection() as conn:
            hosts = host_store.list_hosts(conn)
        for host in hosts:
            self.watch(host.name, host.endpoint)

    def watch(self, name: str, endpoint: str) -> None:
        self._call(self._watch(name, endpoint))

    def unwatch(self, name: str) -> None:
        self._call(self._unwatch(name))

    def current(self, name: str) -> HostState | None:
        return self._hosts.get(name)

    def snapshot(self) -> dict[str, HostState]:
        """Every host's current state (a consistent copy of the mapping, taken at once)."""
        return dict(self._hosts)

    def watched(self) -> set[str]:
        return set(self._tasks)

    def add_listener(self, listener: Listener) -> None:
        """Called on the monitor's loop after each event is applied; must be quick."""
        self._listeners.append(listener)

    def flush(self) -> None:
        """Write pending reports now (tests, shutdown)."""
        asyncio.run_coroutine_threadsafe(self._flush(), self._loop).result(60)

    def stop(self) -> None:
        if not self._loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- the loop --------------------------------------------------------------------

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _background(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._flusher = asyncio.create_task(self._flush_periodically())
        self._checker = asyncio.create_task(self._check_reachability())
        self._freezer = asyncio.create_task(self._freeze_long_lived())

    async def _watch(self, name: str, endpoint: str) -> None:
        if name not in self._tasks:
            self._tasks[name] = asyncio.create_task(self._follow(name, endpoint), name=f"monitor-{name}")

    async def _unwatch(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task:
            task.cancel()
        self._hosts.pop(name, None)
        self._dirty.discard(name)
        self._heard.discard(name)
        self._unreachable.discard(name)
        self._unreachable_unwritten.discard(name)
        self._never_reported_since.pop(name, None)
        channel = self._channels.pop(name, None)
        if channel is not None:
            await channel.close()

    async def _shutdown(self) -> None:
        for name in list(self._tasks):
            task = self._tasks.pop(name)
            task.cancel()
        self._flusher.cancel()
        self._checker.cancel()
        self._freezer.cancel()
        try:
            await self._flush()
        except Exception:
            log.exception("could not write the last reports")
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _channel(self, name: str, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(name)
        if channel is None:
            options = [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", name)]
            channel = grpc.aio.secure_channel(grpc_target(endpoint), self._creds, options=options)
            self._channels[name] = channel
        return channel

    def _heartbeat_s(self) -> int:
        return max(1, int(self.unreachable_after_s / 3))

    async def _follow(self, name: str, endpoint: str) -> None:
        backoff = 0.1
        while True:
            held = self._hosts.get(name)
            request = agent_pb2.WatchNetworkStateRequest(
                resume_after=held.sequence if held else 0, epoch=held.epoch if held else "",
                heartbeat_s=self._heartbeat_s())
            stub = agent_pb2_grpc.AgentServiceStub(self._channel(name, endpoint))
            call = stub.WatchNetworkState(request, metadata=((HOST_METADATA, name),))
            try:
                async for event in call:
                    self._ingest(name, event)
                    backoff = 0.1
            except grpc.aio.AioRpcError as exc:
                log.info("lost the state stream of host %s: %s %s", name, exc.code().name, exc.details())
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception:
                log.exception("following host %s failed", name)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _ingest(self, name: str, event: agent_pb2.NetworkStateEvent) -> None:
        held = self._hosts.get(name)
        if event.HasField("state"):
            state = event.state
        elif held is not None and held.epoch == event.epoch:
            state = held.state if netdelta.is_empty(event.delta) else netdelta.apply_delta(held.state, event.delta)
            self.changes_ingested += netdelta.change_count(event.delta)
        else:
            # A delta we cannot place: should not happen (we resume only from what we hold); start over.
            log.warning("host %s sent a delta for a state the manager does not hold", name)
            raise grpc.aio.AioRpcError(grpc.StatusCode.DATA_LOSS, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "delta without a base")
        if held is None or state is not held.state:
            self._states_replaced += 1
        changed = held is None or state is not held.state or not held.reachable
        current = HostState(name, state, event.epoch, event.sequence, dt.datetime.now(dt.timezone.utc),
                            time.monotonic())
        self._hosts[name] = current
        self.events_ingested += 1
        self._unreachable.discard(name)
        self._unreachable_unwritten.discard(name)
        if changed or (held and held.sequence != event.sequence):
            self._dirty.add(name)
        else:
            self._heard.add(name)
        for listener in self._listeners:
            listener(current, event)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self._flush()
            except Exception:  # the database being away must not stop the monitor
                log.exception("could not write host reports; will retry")

    async def _flush(self) -> None:
        names, self._dirty = self._dirty, set()
        heard_names, self._heard = self._heard - names, set()
        held = [self._hosts[n] for n in names if n in self._hosts]
        heard = [(n, self._hosts[n].reported_at) for n in heard_names if n in self._hosts]
        gone, self._unreachable_unwritten = sorted(self._unreachable_unwritten), set()
        if not held and not heard and not gone:
            return
        try:
            await asyncio.to_thread(self._write, held, heard, gone)
        except Exception:
            self._dirty |= {h.name for h in held}
            self._unreachable_unwritten |= set(gone) & self._unreachable
            raise

    def _write(self, held: list[HostState], heard: list[tuple[str, dt.datetime]], unreachable: list[str]) -> None:
        """One transaction for the whole batch; the JSON form is made here, off the loop."""
        rows = [host_store.ReportRow(h.name, h.sequence, h.reported_at,
                                     MessageToDict(h.state, preserving_proto_field_name=True)) for h in held]
        with self._pool.connection() as conn:
            with conn.transaction():
                host_store.save_reports(conn, rows)
                host_store.mark_heard(conn, heard)
                host_store.mark_unreachable(conn, unreachable)

    async def _freeze_long_lived(self, every_s: float = 2.0) -> None:
        frozen_at = -1
        while True:
            await asyncio.sleep(every_s)
            if self._states_replaced != frozen_at:
                gc.freeze()
                frozen_at = self._states_replaced

    async def _check_reachability(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.unreachable_after_s / 4))
            limit = time.monotonic() - self.unreachable_after_s
            for name, host in list(self._hosts.items()):
                if host.reachable and host.reported_mono < limit and name in self._tasks:
                    log.warning("host %s has not reported for %.0f s: unreachable", name, self.unreachable_after_s)
                    self._hosts[name] = HostState(host.name, host.state, host.epoch, host.sequence,
                                                  host.reported_at, host.reported_mono, reachable=False)
                    self._mark_unreachable(name)
            for name in list(self._tasks):
                if name not in self._hosts and name not in self._unreachable:
                    self._never_reported_since.setdefault(name, time.monotonic())
                    if self._never_reported_since[name] < limit:
                        self._mark_unreachable(name)

    def _mark_unreachable(self, name: str) -> None:
        self._unreachable.add(name)
        self._unreachable_unwritten.add(name)
