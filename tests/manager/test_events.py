"""The audit trail in PostgreSQL: append-only in the database itself, filtered reads, purge, the batching writer."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import psycopg
import pytest

from manager.auth.identity import Identity, Kind, Role
from manager.service.events import EventRecorder, EventService
from manager.store import events as store
from manager.store.database import open_pool
from manager.store.events import EventFilter, EventRecord
from tests.fixtures.lab import eventually
from virtfleet.v1 import fleet_pb2

NOW = dt.datetime.now(dt.timezone.utc)
ALICE = Identity("alice", Kind.UNIX, Role.ADMIN, "uid=1001 pid=42")
BOB = Identity("bob", Kind.CERT, Role.OPERATOR, "ipv6:[::1]:5555")
CREATE = "/virtfleet.v1.FleetService/CreateNetwork"


def _row(at: dt.datetime, who: str = "alice", kind: str = "network", name: str = "vmnet", rpc: str = CREATE,
         code: str = "OK") -> EventRecord:
    return EventRecord(at=at, identity_name=who, identity_kind="unix", role="admin", peer="uid=1001", rpc=rpc,
                       object_kind=kind, object_name=name, summary={"name": name}, code=code, message="",
                       duration_ms=1.5, request_id="r1")


@pytest.fixture
def pool(empty_db: str) -> Iterator:
    p = open_pool(empty_db, min_size=1, max_size=4, wait_s=3)
    yield p
    p.close()


def _insert(pool, *rows: EventRecord) -> None:
    with pool.connection() as conn, conn.transaction():
        store.insert_many(conn, list(rows))


def _count(pool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


# -- the table --------------------------------------------------------------------------------


def test_rows_cannot_be_updated_deleted_or_truncated(pool):
    _insert(pool, _row(NOW - dt.timedelta(days=500)))
    for sql in ("UPDATE events SET code = 'OK', identity_name = 'mallory'", "DELETE FROM events",
                "TRUNCATE events"):
        with pool.connection() as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)
    assert _count(pool) == 1


@pytest.mark.parametrize("cutoff", ["now() - interval '2 days'", "now() + interval '1 year'"])
def test_the_purge_setting_never_opens_deletion_of_a_recent_row(pool, cutoff):
    _insert(pool, _row(NOW - dt.timedelta(days=500)), _row(NOW - dt.timedelta(hours=1)))
    with pool.connection() as conn:
        conn.execute(f"SELECT set_config('virtfleet.events_purge_before', ({cutoff})::text, true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM events")   # the young row is in the statement: all of it is refused
    assert _count(pool) == 2


def test_purge_removes_only_rows_older_than_the_retention(pool):
    _insert(pool, _row(NOW - dt.timedelta(days=500), name="old"), _row(NOW - dt.timedelta(days=399), name="kept"),
            _row(NOW, name="new"))
    recorder = EventRecorder(pool)
    assert EventService(pool, recorder, keep_days=400).purge() == 1
    with pool.connection() as conn:
        assert [r.object_name for r in store.latest(conn, EventFilter())] == ["kept", "new"]
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            store.purge(conn, 0)


def test_filters_by_time_object_and_identity(pool):
    _insert(pool, _row(NOW - dt.timedelta(hours=3), name="a"),
            _row(NOW - dt.timedelta(minutes=30), who="bob", kind="vm", name="web1"),
            _row(NOW - dt.timedelta(minutes=20), kind="vm", name="web2"),
            _row(NOW - dt.timedelta(minutes=10), who="bob", kind="vm", name="web1", code="PERMISSION_DENIED"))
    service = EventService(pool, EventRecorder(pool))
    names = lambda **f: [(r.identity_name, r.object_name) for r in service.list(EventFilter(**f))]  # noqa: E731
    assert names() == [("alice", "a"), ("bob", "web1"), ("alice", "web2"), ("bob", "web1")]
    assert names(since=NOW - dt.timedelta(hours=1)) == [("bob", "web1"), ("alice", "web2"), ("bob", "web1")]
    assert names(object_kind="vm", object_name="web1") == [("bob", "web1"), ("bob", "web1")]
    assert names(object_kind="vm") == [("bob", "web1"), ("alice", "web2"), ("bob", "web1")]
    assert names(identity="alice") == [("alice", "a"), ("alice", "web2")]
    assert names(limit=2) == [("alice", "web2"), ("bob", "web1")]   # the newest, oldest first


# -- the recorder ------------------------------------------------------------------------------


def _call(recorder: EventRecorder, method: str = CREATE, name: str = "vmnet", code: str = "OK",
          who: Identity | None = ALICE) -> None:
    recorder.record_call(identity=who, method=method,
                         request=fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name)),
                         code=code, message="", duration_s=0.002, request_id="req-1")


def test_the_writer_stores_in_batches(pool):
    recorder = EventRecorder(pool, batch_max=1000, flush_s=3600)
    for i in range(2500):
        _call(recorder, name=f"n{i}")
    recorder.start()
    try:
        assert recorder.flush(timeout_s=60)
    finally:
        recorder.close()
    assert (recorder.stats.written, recorder.stats.batches) == (2500, 3)
    with pool.connection() as conn:
        rows = store.latest(conn, EventFilter(limit=3000))
    assert [r.object_name for r in rows[:2]] == ["n0", "n1"] and len(rows) == 2500
    r = rows[0]
    assert (r.identity_name, r.identity_kind, r.role, r.peer, r.rpc, r.object_kind, r.code, r.request_id) == (
        "alice", "unix", "admin", "uid=1001 pid=42", CREATE, "network", "OK", "req-1")
    assert r.summary == {"network": {"name": "n0"}} and r.duration_ms == 2.0


def test_close_writes_what_waits(pool):
    recorder = EventRecorder(pool, batch_max=1000, flush_s=3600)   # would wait an hour for a full batch
    recorder.start()
    _call(recorder, name="one")
    recorder.record_system("host.unreachable", "host", "h1", {"silent_s": 30}, "no report for 30 s")
    recorder.close()
    with pool.connection() as conn:
        rows = store.latest(conn, EventFilter())
    assert [(r.rpc, r.object_name, r.identity_name, r.identity_kind, r.role) for r in rows] == [
        (CREATE, "one", "alice", "unix", "admin"), ("host.unreachable", "h1", "manager", "system", "admin")]
    assert rows[1].message == "no report for 30 s" and rows[1].summary == {"silent_s": 30}


def test_reads_are_not_recorded_refusals_and_anonymous_callers_are(pool):
    recorder = EventRecorder(pool)
    _call(recorder, method="/virtfleet.v1.FleetService/GetNetwork")
    _call(recorder, method="/virtfleet.v1.FleetService/GetNetwork", code="PERMISSION_DENIED",
          who=Identity("eve", Kind.UNIX, None, "uid=1002"))
    _call(recorder, code="UNAUTHENTICATED", who=None)
    recorder.close()
    with pool.connection() as conn:
        rows = store.latest(conn, EventFilter())
    assert [(r.identity_name, r.identity_kind, r.role, r.code) for r in rows] == [
        ("eve", "unix", None, "PERMISSION_DENIED"), ("", "anonymous", None, "UNAUTHENTICATED")]


def test_a_full_queue_drops_the_oldest_and_logs_each(pool, caplog):
    recorder = EventRecorder(pool, queue_max=3)
    with caplog.at_level(logging.WARNING, logger="virtfleet.events.dropped"):
        for i in range(5):
            _call(recorder, name=f"n{i}")
    recorder.close()
    assert recorder.stats.dropped == 2
    dropped = [r.getMessage() for r in caplog.records if r.name == "virtfleet.events.dropped"]
    assert len(dropped) == 2 and "network/n0" in dropped[0] and "alice" in dropped[0]
    with pool.connection() as conn:
        assert [r.object_name for r in store.latest(conn, EventFilter())] == ["n2", "n3", "n4"]


def test_rows_wait_through_a_database_outage(pool, empty_db):
    dbname = psycopg.conninfo.conninfo_to_dict(empty_db)["dbname"]
    admin_dsn = psycopg.conninfo.make_conninfo(empty_db, dbname="postgres")
    recorder = EventRecorder(pool, flush_s=0.01, retry_s=0.05)
    recorder.start()
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
            try:
                _call(recorder, name="during")
                assert eventually(lambda: recorder.stats.failures > 0)
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        assert recorder.flush(timeout_s=60)
    finally:
        recorder.close()
    assert recorder.stats.dropped == 0
    with pool.connection() as conn:
        assert [r.object_name for r in store.latest(conn, EventFilter())] == ["during"]


def test_a_follower_gets_the_past_then_what_is_written_next(pool):
    _insert(pool, _row(NOW - dt.timedelta(minutes=5), name="before"))
    recorder = EventRecorder(pool, flush_s=0.01)
    recorder.start()
    service = EventService(pool, recorder)
    try:
        stream = service.follow(EventFilter(object_kind="network"), past=True, keep_going=lambda: True,
                                wake_s=0.05)
        assert next(stream).object_name == "before"
        recorder.record_system("host.unreachable", "host", "h1")   # filtered out
        _call(recorder, name="after")
        got = None
        for _ in range(2000):
            got = next(stream)
            if got is not None:
                break
        assert got is not None and got.object_name == "after"
        stream.close()
    finally:
        recorder.close()
