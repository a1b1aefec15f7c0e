"""Named queries on the audit trail (db/009_events.sql): append in batches, read with filters, purge.

The table is append-only in the database itself (triggers refuse UPDATE,
TRUNCATE and any DELETE but `purge_events()`'s), so nothing here edits a row.
Rows go in with COPY: one round trip per batch, whatever its size.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

_COLUMNS = ("at", "identity_name", "identity_kind", "role", "peer", "rpc", "object_kind", "object_name",
            "summary", "code", "message", "duration_ms", "request_id")
_SELECT = f"SELECT id, {', '.join(_COLUMNS)} FROM events"


@dataclass(frozen=True)
class EventRecord:
    at: dt.datetime
    identity_name: str
    identity_kind: str          # unix, cert, host, system, anonymous
    role: str | None            # None: the caller holds no role
    peer: str
    rpc: str                    # full gRPC method, or a system action ("host.unreachable")
    object_kind: str
    object_name: str
    summary: dict[str, Any]
    code: str                   # gRPC status name
    message: str
    duration_ms: float
    request_id: str
    id: int | None = None       # set once stored


@dataclass(frozen=True)
class EventFilter:
    since: dt.datetime | None = None
    object_kind: str = ""       # "" any
    object_name: str = ""       # "" any (with a kind: every object of that kind)
    identity: str = ""          # "" any
    after_id: int = 0           # only rows with a larger id (following)
    limit: int = 100
    exclude_ids: frozenset[int] = field(default_factory=frozenset)


def insert_many(conn: psycopg.Connection, records: list[EventRecord]) -> None:
    """One COPY for the batch, in the caller's transaction."""
    with conn.cursor() as cur, cur.copy(f"COPY events ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        for r in records:
            copy.write_row((r.at, r.identity_name, r.identity_kind, r.role, r.peer, r.rpc, r.object_kind,
                            r.object_name, json.dumps(r.summary, sort_keys=True, default=str), r.code, r.message,
                            r.duration_ms, r.request_id))


def _where(f: EventFilter) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if f.since is not None:
        clauses.append("at >= %(since)s")
        params["since"] = f.since
    if f.object_kind:
        clauses.append("object_kind = %(kind)s")
        params["kind"] = f.object_kind
    if f.object_name:
        clauses.append("object_name = %(name)s")
        params["name"] = f.object_name
    if f.identity:
        clauses.append("identity_name = %(identity)s")
        params["identity"] = f.identity
    if f.after_id:
        clauses.append("id > %(after)s")
        params["after"] = f.after_id
    if f.exclude_ids:
        clauses.append("NOT (id = ANY(%(exclude)s))")
        params["exclude"] = sorted(f.exclude_ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row) -> EventRecord:
    id_, *rest = row
    return EventRecord(*rest, id=id_)


def latest(conn: psycopg.Connection, f: EventFilter) -> list[EventRecord]:
    """The newest `limit` rows matching, oldest first (as a log reads)."""
    where, params = _where(f)
    params["limit"] = f.limit
    rows = conn.execute(f"{_SELECT}{where} ORDER BY at DESC, id DESC LIMIT %(limit)s", params).fetchall()
    return [_record(r) for r in reversed(rows)]


def following(conn: psycopg.Connection, f: EventFilter) -> list[EventRecord]:
    """Rows with an id above `after_id` (minus those already seen), in id order: what a follower has not had."""
    where, params = _where(f)
    params["limit"] = f.limit
    return [_record(r) for r in conn.execute(f"{_SELECT}{where} ORDER BY id LIMIT %(limit)s", params)]


def last_id(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def purge(conn: psycopg.Connection, keep_days: int) -> int:
    """Delete the rows older than `keep_days` (at least 1); the only delete the table lets through."""
    return conn.execute("SELECT purge_events(%s)", (keep_days,)).fetchone()[0]
