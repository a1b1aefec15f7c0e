"""The read model: what the fleet API's hottest reads need (hosts, networks, MAC pools) kept in memory.

**Consistency rule.** A read served from the model reflects every write this
manager acknowledged before the read began, and every other manager's write
within the NOTIFY lag (PostgreSQL hands a commit's notifications to listeners
as it commits; milliseconds). Whenever the model cannot promise that, the read
goes to the database, as it did before the model existed. A group is always one
snapshot (loaded in one REPEATABLE READ transaction), never a mix of two.

How each part of the rule is kept:

- **Other managers.** Triggers (db/016_read_model_notify.sql) notify channel
  `virtfleet_read_model` at each commit with the changed table. One connection
  of our own LISTENs, in one thread; a table's notification drops the groups
  built from it (their generation moves on). A dropped group is loaded again by
  the next read that wants it; a load during which its group was dropped serves
  that one read (its snapshot is younger than the read) but is not kept.
- **This manager's own writes.** Notifications reach the listener
  asynchronously, so a caller could read the model before the listener has seen
  its own commit. Every pool checkout that may have written is counted when it
  ends (`FleetPool.write_observers`: after the commit, in the caller's thread,
  before it can answer anyone). The listener then sends a barrier NOTIFY
  carrying the count on its own connection; notifications arrive in commit
  order, so once the barrier is back every counted write's notification has
  been applied. Until then reads go to the database; nobody waits.
- **A lost LISTEN connection.** The model is dropped as soon as the loss is
  noticed (at once on a unix socket; over TCP within the keepalive bounds of
  `TCP_LIVENESS`, which then adds to another manager's lag; this manager's own
  writes wait for a barrier that cannot come back, so they are never missed) and
  reads go to the database; the listener reconnects (backing off to 5 s),
  LISTENs, and only then does the model serve (and load) again.

The values a group holds are shared by every read: read-only, like the frozen
records they are made of.
"""
from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import psycopg
from psycopg import IsolationLevel

from ..store.database import TCP_LIVENESS, FleetPool

log = logging.getLogger(__name__)

CHANNEL = "virtfleet_read_model"
_BARRIER = "barrier "
RECONNECT_MAX_S = 5.0

T = TypeVar("T")


class ReadGroup(Generic[T]):
    """One part of the model, built by `load(conn)` from `tables` in one snapshot."""

    def __init__(self, model: "ReadModel", name: str, tables: Iterable[str],
                 load: Callable[[psycopg.Connection], T]) -> None:
        self.name, self.tables, self._model, self._load = name, frozenset(tables), model, load
        self._value: T | None = None
        self._generation = 0
        self._state = threading.Lock()     # a load's install against a notification's drop
        self._loading = threading.Lock()   # one load at a time; the others wait for it
        self.loads = 0

    def get(self) -> T | None:
        """The group under the module's rule, or None: read the database instead."""
        if not self._model.serving():
            return None
        value = self._value
        return value if value is not None else self._reload()

    def drop(self) -> None:
        with self._state:
            self._generation += 1
            self._value = None

    def _reload(self) -> T | None:
        with self._loading:
            value = self._value            # loaded by the read we waited for
            if value is not None:
                return value
            generation = self._generation
            try:
                with self._model.pool.connection(writes=False) as conn:
                    conn.isolation_level = IsolationLevel.REPEATABLE_READ
                    try:
                        with conn.transaction():
                            value = self._load(conn)
                    finally:
                        conn.isolation_level = None
            except Exception:  # noqa: BLE001 - the database path answers (or fails) as it always did
                log.debug("loading the read model's %s failed; reading the database", self.name, exc_info=True)
                return None
            self.loads += 1
            with self._state:
                if self._generation == generation:
                    self._value = value
            return value


class ReadModel:
    """The groups, the LISTEN connection and the barrier. Starts nothing before `start()`; until then
    (and without a `FleetPool`, whose writes it cannot count) every read goes to the database."""

    def __init__(self, pool, dsn: str) -> None:
        self.pool = pool
        self._dsn = dsn
        self._groups: list[ReadGroup] = []
        self._lock = threading.Lock()
        self._issued = 0          # checkouts that may have written, counted as each ended
        self._seen = 0            # the highest barrier back from PostgreSQL
        self._barrier_asked = False
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self.listener_pid = 0     # the LISTEN connection's backend (tests end it to prove the fallback)
        self.connects = 0

    def group(self, name: str, tables: Iterable[str], load: Callable[[psycopg.Connection], T]) -> ReadGroup[T]:
        g: ReadGroup[T] = ReadGroup(self, name, tables, load)
        self._groups.append(g)
        return g

    def serving(self) -> bool:
        return self._listening and self._seen >= self._issued

    # -- this manager's writes -------------------------------------------------------------

    def note_write(self) -> None:
        """A checkout that may have written has ended: reads go to the database until the barrier is back."""
        with self._lock:
            self._issued += 1
            if self._barrier_asked:
                return
            self._barrier_asked = True
        try:
            os.write(self._wake_w, b"w")
        except OSError:
            pass       # stopping: the model serves nothing any more

    # -- the listener ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or not isinstance(self.pool, FleetPool):
            return
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.pool.write_observers.append(self.note_write)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="read-model", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"s")
        self._thread.join(10)
        self._thread = None
        self.pool.write_observers.remove(self.note_write)
        self._drop_all()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=2, **TCP_LIVENESS) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listener_pid = conn.info.backend_pid
                    self.connects += 1
                    backoff = 0.25
                    self._drop_all()              # whatever changed while nobody listened
                    self._listening = True
                    self._follow(conn)
            except psycopg.Error as err:
                if not self._stop.is_set():
                    log.warning("the read model's LISTEN connection failed (%s): reads go to the database "
                                "until it is back", str(err).strip().splitlines()[0] if str(err).strip() else err)
            finally:
                self._listening = False
                self._drop_all()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _follow(self, conn: psycopg.Connection) -> None:
        fd = conn.fileno()
        self._send_barrier(conn)                  # writes counted while nobody listened
        while not self._stop.is_set():
            ready, _, _ = select.select([fd, self._wake_r], [], [], 5.0)
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
                if self._stop.is_set():
                    return
                self._send_barrier(conn)
            for note in conn.notifies(timeout=0):
                self._apply(note.payload, ours=note.pid == self.listener_pid)
            if not ready:
                conn.execute("SELECT 1")          # an idle TCP peer may be gone without a word

    def _send_barrier(self, conn: psycopg.Connection) -> None:
        with self._lock:
            self._barrier_asked = False
            count = self._issued
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{_BARRIER}{count}"))

    def _apply(self, payload: str, *, ours: bool) -> None:
        if payload.startswith(_BARRIER):         # every manager listening hears it; only its sender counts it
            count = int(payload[len(_BARRIER):])
            if ours and count > self._seen:
                self._seen = count
            return
        for g in self._groups:
            if payload in g.tables:
                g.drop()

    def _drop_all(self) -> None:
        for g in self._groups:
            g.drop()
