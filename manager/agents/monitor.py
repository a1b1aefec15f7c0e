"""Keeps every host's current network state in memory, fed by its agent's stream.

The monitor is the one thing the rest of the manager holds; each job is its
own class, wired here:

- `HostStreams` (streams.py) follows each watched host's stream;
- `HostStates` (states.py) holds the states and tells listeners of each event;
- `ReportWriter` (reports.py) writes them to PostgreSQL in batches;
- `Reachability` (reachability.py) marks hosts silent past the limit unreachable;
- `LoopThread` (loop.py) is the one asyncio loop they all run on.

Nothing runs until `start()`: building the manager starts no thread, and the
hosts watched before then (the manager's API is served first) are followed
from `start()` on.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from virtfleet.v1 import agent_pb2

from ..store import hosts as host_store
from .clients import AgentClients
from .loop import LoopThread
from .reachability import Reachability
from .reports import ReportWriter
from .states import HostState, HostStates, Listener, keep_frozen
from .streams import HostStreams

log = logging.getLogger(__name__)


class HostMonitor:
    def __init__(self, pool: ConnectionPool, clients: AgentClients, *, unreachable_after_s: float = 30.0,
                 flush_interval_s: float = 0.5, record_system: Callable[..., None] | None = None) -> None:
        self._pool = pool
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self._clients = clients
        self._loop = LoopThread("host-monitor")
        self._states = HostStates()
        self._streams = HostStreams(clients, self._states.current, self._ingest, self._heartbeat_s)
        self._reachability = Reachability(self._states, self._streams.watched, self._unreachable,
                                          unreachable_after_s)
        self._writer = ReportWriter(pool, self._states, self._reachability.is_unreachable, flush_interval_s)
        self._background: list[asyncio.Task] = []

    # -- starting and stopping ---------------------------------------------------------

    def start(self) -> None:
        """Start the loop and follow every host watched so far."""
        if self._loop.running:
            return
        self._loop.start()
        self._loop.run(self._start_on_loop())

    def start_all(self) -> None:
        """Start, and follow every enrolled host."""
        self.start()
        with self._pool.connection() as conn:
            hosts = host_store.list_hosts(conn)
        for host in hosts:
            if host.status not in ("pending", "revoked"):   # no certificate to call them with
                self.watch(host.name, host.endpoint)

    def stop(self) -> None:
        """Stop following, write what is pending, close the streams' channels."""
        self._loop.stop(self._stop_on_loop() if self._loop.running else None)

    async def _start_on_loop(self) -> None:
        self._background = [asyncio.create_task(job) for job in
                            (self._writer.run(), self._reachability.run(), keep_frozen(self._states))]
        self._streams.start()

    async def _stop_on_loop(self) -> None:
        self._streams.stop()
        for task in self._background:
            task.cancel()
        try:
            await self._writer.flush()
        except Exception:
            log.exception("could not write the last reports")
        await self._clients.close_aio()

    # -- what others use -----------------------------------------------------------------

    def watch(self, name: str, endpoint: str) -> None:
        self._loop.call(lambda: self._streams.watch(name, endpoint))

    def unwatch(self, name: str) -> None:
        """Stop following a host and drop what is held of it (its channels: `AgentClients.forget`)."""
        self._loop.call(lambda: self._unwatch(name))

    def _unwatch(self, name: str) -> None:
        self._streams.unwatch(name)
        self._states.forget(name)
        self._writer.forget(name)
        self._reachability.forget(name)

    def watched(self) -> set[str]:
        return self._streams.watched()

    def current(self, name: str) -> HostState | None:
        return self._states.current(name)

    def snapshot(self) -> dict[str, HostState]:
        """Every host's current state (a consistent copy of the mapping, taken at once)."""
        return self._states.snapshot()

    def add_listener(self, listener: Listener) -> None:
        """Called on the monitor's loop after each event is applied; must be quick."""
        self._states.add_listener(listener)

    def flush(self) -> None:
        """Write pending reports now (tests, shutdown)."""
        if self._loop.running:
            self._loop.run(self._writer.flush(), 60)

    @property
    def unreachable_after_s(self) -> float:
        return self._reachability.limit_s

    @unreachable_after_s.setter
    def unreachable_after_s(self, seconds: float) -> None:
        self._reachability.limit_s = seconds

    @property
    def events_ingested(self) -> int:
        return self._states.events_ingested

    @property
    def changes_ingested(self) -> int:
        return self._states.changes_ingested

    # -- wiring --------------------------------------------------------------------------

    def _ingest(self, name: str, event: agent_pb2.NetworkStateEvent) -> None:
        """Every event of every stream passes here, on the loop."""
        _, news = self._states.ingest(name, event)
        if self._reachability.is_unreachable(name):
            self._record_system("host.reachable", "host", name, {}, "the host's agent reports again")
        self._reachability.heard(name)
        self._writer.note(name, news)

    def _unreachable(self, name: str) -> None:
        self._writer.unreachable(name)
        self._record_system("host.unreachable", "host", name, {"silent_s": self.unreachable_after_s},
                            f"no report for {self.unreachable_after_s:g} s")

    def _heartbeat_s(self) -> int:
        return max(1, int(self.unreachable_after_s / 3))
