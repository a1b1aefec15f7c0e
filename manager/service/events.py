"""The audit trail: recording calls and system actions without slowing calls, reading and following it.

`EventRecorder.record_call` is called by the API's interceptor after every
fleet-API call. It decides at once (`is_event`) and, for an event, only
appends to a bounded in-memory queue: the call returns without waiting for
PostgreSQL. One writer thread takes what is queued and writes it with one
COPY per batch, at the latest `flush_s` after the first row arrived, or as
soon as `batch_max` rows wait. The request is described (object, summary) on
the writer thread too, off the call's path.

When PostgreSQL is away, the rows wait and are retried every `retry_s`; the
queue is bounded (`queue_max`), and a row that has to go makes a log line of
its own (logger `virtfleet.events.dropped`) with who, what and the status, so
the trail continues in the manager's journal. `close()` writes what is left.

System actions (`record_system`) take the same path, as the `SYSTEM` identity.
Services that raise them get a `record_system` callable (a no-op by default),
so none of them depends on this module.
"""
from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import grpc
from psycopg_pool import ConnectionPool

from ..auth.identity import SYSTEM, Identity, Kind
from ..auth.roles import READS
from ..domain.eventdescribe import describe
from ..store import events as store
from ..store.events import EventFilter, EventRecord

log = logging.getLogger(__name__)
dropped_log = logging.getLogger("virtfleet.events.dropped")

REFUSED = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})


class RecordSystem(Protocol):
    def __call__(self, action: str, object_kind: str, object_name: str, summary: dict[str, Any] | None = None,
                 message: str = "") -> None: ...


def no_record_system(action: str, object_kind: str, object_name: str, summary: dict[str, Any] | None = None,
                     message: str = "") -> None:
    """What services use when nobody records their system events (tests of one service, tools)."""


def code_name(code: grpc.StatusCode | str | None) -> str:
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


def is_event(method: str, code: str) -> bool:
    """A call is a row when it changes (or tried to change) something, or when it was refused."""
    return method not in READS or code in REFUSED


@dataclass
class _Pending:
    """A queued event: described on the writer thread (`request` is kept until then)."""

    at: dt.datetime
    identity: Identity | None
    rpc: str
    request: object
    code: str
    message: str
    duration_ms: float
    request_id: str
    described: tuple[str, str, dict[str, Any]] | None = None   # system events come described


@dataclass
class RecorderStats:
    recorded: int = 0      # events accepted into the queue
    written: int = 0       # rows stored
    dropped: int = 0       # rows lost to a full queue (each logged)
    batches: int = 0
    failures: int = 0      # attempts that could not write a batch (retried)


class EventRecorder:
    """Queue and writer of the audit trail; nothing runs until `start()`."""

    def __init__(self, pool: ConnectionPool, *, queue_max: int = 50_000, batch_max: int = 1000,
                 flush_s: float = 0.1, retry_s: float = 1.0) -> None:
        self._pool = pool
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._flush_s = flush_s
        self._retry_s = retry_s
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._written = threading.Condition()    # notified after each stored batch: followers wake
        self._busy = 0                           # rows taken by the writer, not stored yet
        self._closing = False
        self._flushing = 0                       # callers of flush() waiting: the writer does not wait for more
        self._closed = threading.Event()         # the writer's pause between attempts ends early on close
        self._thread: threading.Thread | None = None
        self.stats = RecorderStats()

    # -- what callers use ---------------------------------------------------------------------

    def record_call(self, *, identity: Identity | None, method: str, request: object,
                    code: grpc.StatusCode | str | None, message: str = "", duration_s: float = 0.0,
                    request_id: str = "") -> None:
        """After every fleet-API call; cheap for reads (one set lookup), a queue append for events."""
        name = code_name(code)
        if not is_event(method, name):
            return
        self._put(_Pending(dt.datetime.now(dt.timezone.utc), identity, method, request, name, message or "",
                           max(0.0, duration_s * 1000.0), request_id or ""))

    def record_system(self, action: str, object_kind: str, object_name: str, summary: dict[str, Any] | None = None,
                      message: str = "") -> None:
        """Something the manager did or saw by itself ("host.unreachable", "macpool.low", …)."""
        self._put(_Pending(dt.datetime.now(dt.timezone.utc), SYSTEM, action, None, "OK", message, 0.0, "",
                           (object_kind, object_name, dict(summary or {}))))

    def wait_written(self, timeout_s: float) -> None:
        """Return after the next stored batch, or after `timeout_s` (followers poll at least this often)."""
        with self._written:
            self._written.wait(timeout_s)

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="events-writer", daemon=True)
            self._thread.start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything recorded so far is stored (or dropped); False if it took longer."""
        if self._thread is None:
            self._write_now()
            return not self._queue
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.05))
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one last attempt if the database is away), then stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._write_now()
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        for item in left:
            self._drop(item, "the manager stopped while the database was unreachable")

    # -- the writer ---------------------------------------------------------------------------

    def _put(self, item: _Pending) -> None:
        with self._cond:
            if len(self._queue) >= self._queue_max:
                lost = self._queue.popleft()
            else:
                lost = None
            self._queue.append(item)
            self.stats.recorded += 1
            if len(self._queue) == 1 or len(self._queue) >= self._batch_max:
                self._cond.notify_all()
        if lost is not None:
            self._drop(lost, f"more than {self._queue_max} events waited for the database")

    def _take(self) -> list[_Pending] | None:
        """The next batch: waits for a first row, then up to `flush_s` for more; None once closing and empty."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self._flush_s
            while len(self._queue) < self._batch_max and not (self._closing or self._flushing):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
            self._busy = len(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            stored = self._store(batch)
            with self._cond:
                if not stored:   # back to the front, in order; the queue's bound still holds
                    self._queue.extendleft(reversed(batch))
                    overflow = [self._queue.pop() for _ in range(max(0, len(self._queue) - self._queue_max))]
                else:
                    overflow = []
                self._busy = 0
                self._cond.notify_all()
            for item in overflow:
                self._drop(item, f"more than {self._queue_max} events waited for the database")
            if not stored and self._closed.wait(self._retry_s):
                return   # close() makes the last attempt and logs what is left

    def _write_now(self) -> None:
        """On the caller's thread (no writer running): one attempt for everything queued."""
        with self._cond:
            batch = list(self._queue)
            self._queue.clear()
        if batch and not self._store(batch):
            with self._cond:
                self._queue.extendleft(reversed(batch))

    def _store(self, batch: list[_Pending]) -> bool:
        records = [self._record(item) for item in batch]
        try:
            with self._pool.connection() as conn, conn.transaction():
                store.insert_many(conn, records)
        except Exception as err:   # the database away, or a row it refused: keep them, say why, retry
            self.stats.failures += 1
            if self.stats.failures == 1 or self.stats.failures % 60 == 0:
                log.warning("could not write %d audit events (%s); retrying every %g s", len(records), err,
                            self._retry_s)
            for item, rec in zip(batch, records):
                item.described = (rec.object_kind, rec.object_name, rec.summary)
            return False
        self.stats.written += len(records)
        self.stats.batches += 1
        with self._written:
            self._written.notify_all()
        return True

    @staticmethod
    def _record(item: _Pending) -> EventRecord:
        if item.described is None:
            try:
                d = describe(item.rpc, item.request)
                item.described = (d.object_kind, d.object_name, d.summary)
            except Exception as err:   # a request describe() cannot read still makes a row
                item.described = ("", "", {"describe_error": type(err).__name__})
            item.request = None
        kind, name, summary = item.described
        who = item.identity
        return EventRecord(
            at=item.at, identity_name=who.name if who else "", identity_kind=(who.kind if who else Kind.ANONYMOUS).value,
            role=who.role.value if who and who.role else None, peer=who.peer if who else "", rpc=item.rpc,
            object_kind=kind, object_name=name, summary=summary, code=item.code, message=item.message[:2000],
            duration_ms=round(item.duration_ms, 3), request_id=item.request_id)

    def _drop(self, item: _Pending, why: str) -> None:
        self.stats.dropped += 1
        rec = self._record(item)
        dropped_log.warning("audit event not stored (%s): %s %s(%s) %s %s/%s %s %s", why, rec.at.isoformat(),
                            rec.identity_name, rec.identity_kind, rec.rpc, rec.object_kind, rec.object_name,
                            rec.code, rec.summary)


# -- reading ------------------------------------------------------------------------------------

LIST_MAX = 10_000
FOLLOW_LOOKBACK_S = 10.0   # rows committed late (another writer's transaction) are still found this long


class EventService:
    """Reading the trail, and following it as it grows; and the daily retention purge."""

    def __init__(self, pool: ConnectionPool, recorder: EventRecorder, *, keep_days: int = 400) -> None:
        self._pool = pool
        self._recorder = recorder
        self._keep_days = keep_days
        self._stop = threading.Event()
        self._purger: threading.Thread | None = None

    def list(self, f: EventFilter) -> list[EventRecord]:
        with self._pool.connection() as conn:
            return store.latest(conn, replace(f, limit=max(1, min(f.limit or 100, LIST_MAX))))

    def follow(self, f: EventFilter, *, past: bool, keep_going: Callable[[], bool],
               wake_s: float = 1.0) -> Iterator[EventRecord | None]:
        """The matching past rows (if asked), then new ones as they are stored.

        Yields None at least every `wake_s` with nothing new, so the caller can
        check its client is still there and still allowed. Ids come from a
        sequence and transactions commit in any order, so a row with a smaller
        id can appear after a larger one was seen: each poll looks back over
        the ids seen in the last FOLLOW_LOOKBACK_S, skipping those already sent.
        """
        with self._pool.connection() as conn:
            start = store.last_id(conn)
            shown = store.latest(conn, replace(f, limit=max(1, min(f.limit or 100, LIST_MAX)))) if past else []
        yield from shown
        floor = start
        seen: dict[int, float] = {r.id: time.monotonic() for r in shown if r.id and r.id > floor}
        while keep_going():
            self._recorder.wait_written(wake_s)
            if not keep_going():
                return
            with self._pool.connection() as conn:
                rows = store.following(conn, replace(f, since=None, after_id=floor, limit=LIST_MAX,
                                                     exclude_ids=frozenset(seen)))
            now = time.monotonic()
            for r in rows:
                seen[r.id] = now
            # ids seen long enough ago that nothing below them can still be committing: move the floor up
            settled = [i for i, t in seen.items() if now - t > FOLLOW_LOOKBACK_S]
            if settled:
                floor = max(floor, max(settled))
                seen = {i: t for i, t in seen.items() if i > floor}
            yield from rows
            yield None

    # -- retention ----------------------------------------------------------------------------

    def purge(self) -> int:
        with self._pool.connection() as conn, conn.transaction():
            removed = store.purge(conn, self._keep_days)
        if removed:
            log.info("purged %d audit events older than %d days", removed, self._keep_days)
        return removed

    def start_daily_purge(self, interval_s: float = 86_400.0) -> None:
        if self._purger is None:
            self._purger = threading.Thread(target=self._purge_daily, args=(interval_s,), name="events-purge",
                                            daemon=True)
            self._purger.start()

    def stop(self) -> None:
        self._stop.set()
        if self._purger is not None:
            self._purger.join(10)
            self._purger = None

    def _purge_daily(self, interval_s: float) -> None:
        while True:
            try:
                self.purge()
            except Exception as err:   # the database away: the next day's purge catches up
                log.warning("purging old audit events failed: %s", err)
            if self._stop.wait(interval_s):
                return
