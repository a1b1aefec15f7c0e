"""The manager's pool on a real PostgreSQL: dead connections replaced before use, lost ones UNAVAILABLE,
a busy pool RESOURCE_EXHAUSTED, and everything else passed through as it was."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from manager.store.database import DatabaseUnreachable, FleetPool
from virtfleet.errors import ResourceExhausted


@pytest.fixture
def pool(empty_db: str) -> Iterator[FleetPool]:
    pool = FleetPool(empty_db, min_size=2, max_size=2, connect_timeout_s=2, wait_s=2.0)
    pool.open(wait=True)
    try:
        yield pool
    finally:
        pool.close()


def _backend(pool: FleetPool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def _terminate(dsn: str, pids: set[int]) -> None:
    """What a restart does to each pooled connection: its backend goes, its socket is closed by the server."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_connections_the_server_closed_are_replaced_before_a_caller_gets_one(pool, empty_db):
    with pool.connection() as a, pool.connection() as b:
        pids = {a.info.backend_pid, b.info.backend_pid}
    _terminate(empty_db, pids)
    assert _backend(pool) not in pids
    assert _backend(pool) not in pids


def test_a_connection_lost_during_a_call_is_unavailable_and_the_next_call_works(pool, empty_db):
    with pytest.raises(DatabaseUnreachable) as err:
        with pool.connection() as conn:
            _terminate(empty_db, {conn.info.backend_pid})
            conn.execute("SELECT 1")
    assert err.value.message.startswith("the database is unreachable: the connection was lost (")
    assert _backend(pool)


def test_a_statement_error_on_a_live_connection_is_passed_on(pool):
    with pytest.raises(psycopg.errors.DivisionByZero):
        with pool.connection() as conn:
            conn.execute("SELECT 1 / 0")
    assert _backend(pool)


def test_a_pool_busy_while_the_database_answers_is_resource_exhausted_not_unavailable(pool):
    held = threading.Barrier(3)   # both holders have their connection, and the test knows it
    release = threading.Event()

    def hold() -> None:
        with pool.connection():
            held.wait(10)
            release.wait(30)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    try:
        held.wait(10)
        with pytest.raises(ResourceExhausted) as err:
            with pool.connection(timeout=1.5):
                pass
        assert "database connections stayed busy" in err.value.message
    finally:
        release.set()
        for t in holders:
            t.join(30)
