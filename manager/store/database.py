"""The one connector: a psycopg pool opened after migrations are applied, that says when PostgreSQL is away.

Every query of the manager passes through `FleetPool.connection()`, so this is
the one place where a database outage becomes what a caller can act on,
`DatabaseUnreachable` (UNAVAILABLE), instead of INTERNAL or a 30 s hang:

- **Dead pooled connections.** A restart of PostgreSQL kills every pooled
  connection. Each one is checked as it is handed out: an idle connection has
  nothing to read unless its server has closed it, so a poll of its socket
  finds the dead ones (1.7 µs, measured on a loopback unix socket; the round
  trip of `ConnectionPool.check_connection` costs 55-110 µs there, a third of
  a one-query call). Only a readable one gets the round trip, which fails and
  marks it broken; the pool then replaces it and drains its siblings, which
  died with it. The pool's own `check=` is not used: it sleeps after each
  failed check, doubling (1, 2, 4 s…), and the first call after a restart
  would meet the dead connections one after another.
- **PostgreSQL down.** A call waits at most `PROBE_AFTER_S` for a connection,
  then one direct attempt (`connect_timeout`) tells a busy pool from an absent
  server: absent is `DatabaseUnreachable` with libpq's reason; busy waits on,
  up to `wait_s`, then `ResourceExhausted`.
- **Recovery.** The pool makes no retries in the background
  (`reconnect_timeout=0`): the next call that needs a connection makes a new
  attempt, so the first call after PostgreSQL is back succeeds, instead of
  waiting for the pool's next backoff step (11 s were seen).
- **Writes observed.** Every checkout by `connection()` may write; when it ends
  (committed, rolled back or broken) the pool calls its `write_observers`, in
  the caller's thread, before the caller can acknowledge anything. The read
  model (manager/service/readmodel.py) counts them to keep "a caller reads its
  own writes". `reading()` is a read by its contract and is not counted.
- **A connection lost during a call** (a psycopg error while the connection is
  broken) is `DatabaseUnreachable` too. If it was lost during a commit, the
  change may or may not be saved; the caller was not told it was, so nothing
  confirmed is lost.

Statement-level errors on a live connection (constraint violations the stores
translate, bugs) pass through untouched.
"""
from __future__ import annotations

import logging
import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from virtfleet.deadline import wait_s as caller_wait_s
from virtfleet.errors import ResourceExhausted, Unavailable

from .migrations import apply_migrations

log = logging.getLogger(__name__)
_POOL_LOG = logging.getLogger("psycopg.pool")

PROBE_AFTER_S = 1.0   # a call waits this long for a pooled connection before asking whether PostgreSQL answers

# Over TCP, a vanished server (a host powered off, a partition) sends nothing back: keepalives find an
# idle connection's peer gone, tcp_user_timeout a connection whose data goes unacknowledged. libpq
# ignores both on unix sockets, where the kernel reports a closed peer at once.
TCP_LIVENESS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
                 "tcp_user_timeout": 10_000}


class DatabaseUnreachable(Unavailable):
    """PostgreSQL did not answer; retrying once it is back may succeed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the database is unreachable: {reason}")
        self.reason = reason


def _reason(err: BaseException) -> str:
    """libpq's text on one line (it spreads a failed connection over several, with a hint)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def _alive(conn: psycopg.Connection) -> bool:
    """False if the server has gone from under an idle connection (see the module's docstring)."""
    if conn.closed:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return True
    try:  # readable: a notice, or the server saying goodbye; the round trip tells which
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return False
    return True


class FleetPool(ConnectionPool):
    """A ConnectionPool whose `connection()` raises `DatabaseUnreachable` rather than hang or fail INTERNAL."""

    def __init__(self, dsn: str, *, min_size: int, max_size: int, connect_timeout_s: int, wait_s: float) -> None:
        self._connect_kwargs = {"connect_timeout": max(2, int(connect_timeout_s)), **TCP_LIVENESS}
        self._dsn = dsn
        self._down = False   # for logging the outage once, and its end
        self.write_observers: list[Callable[[], None]] = []   # told after each checkout that may have written
        super().__init__(dsn, kwargs=self._connect_kwargs, min_size=min_size, max_size=max_size, open=False,
                         name="virtfleet", timeout=wait_s, reconnect_timeout=0.0)
        _POOL_LOG.addFilter(self._quiet_while_down)

    def close(self, timeout: float = 5.0) -> None:
        _POOL_LOG.removeFilter(self._quiet_while_down)
        super().close(timeout)

    def _quiet_while_down(self, record: logging.LogRecord) -> bool:
        """Each failed attempt of the pool logs two warnings; once the outage is logged, they say nothing new."""
        return not (self._down and record.levelno <= logging.WARNING
                    and str(record.msg).startswith(("error connecting in", "reconnection attempt in pool")))

    @contextmanager
    def connection(self, timeout: float | None = None, *, writes: bool = True) -> Iterator[psycopg.Connection]:
        """`writes=False` is a promise that nothing is written (`reading()`, the read model's loads)."""
        conn = None
        try:
            with super().connection(timeout) as conn:
                yield conn
        except psycopg.Error as err:
            if conn is None or not conn.closed:
                raise
            raise self._unreachable(f"the connection was lost ({_reason(err)})") from None
        finally:
            if writes and conn is not None:
                for observer in self.write_observers:
                    observer()

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        """A live connection within `timeout` (default `db_wait_s`), or sooner if the caller's deadline is nearer."""
        budget = caller_wait_s(self.timeout if timeout is None else timeout)
        deadline = monotonic() + budget
        while True:
            left = deadline - monotonic()
            try:
                conn = super().getconn(timeout=max(min(PROBE_AFTER_S, left), 0.001))
            except PoolTimeout:
                self._probe()
                if monotonic() >= deadline:
                    raise ResourceExhausted(f"all {self.max_size} database connections stayed busy for "
                                            f"{budget:g} s; retry later") from None
                continue
            if _alive(conn):
                self._up()
                return conn
            log.info("a pooled database connection was found closed by the server: replacing the pool's")
            self.putconn(conn)   # broken: the pool drops it and opens another
            self.drain()         # the others died with it

    def _probe(self) -> None:
        """One connection of our own: does PostgreSQL answer at all? (only when the pool gave none in time)"""
        try:
            psycopg.connect(self._dsn, **self._connect_kwargs).close()
        except psycopg.Error as err:
            raise self._unreachable(_reason(err)) from None

    def _unreachable(self, reason: str) -> DatabaseUnreachable:
        if not self._down:
            self._down = True
            log.warning("the database is unreachable: %s", reason)
        return DatabaseUnreachable(reason)

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("the database is reachable again")


def open_pool(dsn: str, *, min_size: int = 2, max_size: int = 10, connect_timeout_s: int = 2,
              wait_s: float = 10.0) -> FleetPool:
    """Apply the migrations, then open the pool; `DatabaseUnreachable` if PostgreSQL does not answer."""
    try:
        with psycopg.connect(dsn, connect_timeout=max(2, int(connect_timeout_s))) as conn:
            apply_migrations(conn)
    except psycopg.OperationalError as err:
        raise DatabaseUnreachable(_reason(err)) from None
    pool = FleetPool(dsn, min_size=min_size, max_size=max_size, connect_timeout_s=connect_timeout_s, wait_s=wait_s)
    pool.open(wait=True, timeout=30)
    return pool


@contextmanager
def reading(pool: ConnectionPool, timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A connection for a read of ONE statement, outside a transaction: one round trip to PostgreSQL
    instead of three (BEGIN, the query, COMMIT), which is most of a read's time (bench.api). A read
    of several statements takes `pool.connection()`: each statement here would see its own snapshot."""
    checkout = pool.connection(timeout, writes=False) if isinstance(pool, FleetPool) else pool.connection(timeout)
    with checkout as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            try:
                conn.autocommit = False
            except psycopg.Error:
                pass     # broken: the pool drops it on return
