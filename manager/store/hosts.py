"""Named queries on hosts and their network reports."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from virtfleet.errors import AlreadyExists, NotFound


@dataclass(frozen=True)
class HostRecord:
    id: int
    name: str
    address: str
    endpoint: str
    datacenter: str
    cluster: str
    status: str
    cert_fingerprint: str
    enrolled_at: dt.datetime
    last_report_at: dt.datetime | None


@dataclass(frozen=True)
class ReportRecord:
    """One host's newest network report, as stored (and as the monitor writes it, in batches)."""

    host: str
    sequence: int
    reported_at: dt.datetime
    state: dict[str, Any]


_SELECT_HOST = """
    SELECT h.id, h.name, host(h.address) AS address, h.endpoint, d.name AS datacenter,
           c.name AS cluster, h.status, h.cert_fingerprint, h.enrolled_at, h.last_report_at
      FROM hosts h JOIN clusters c ON c.id = h.cluster_id JOIN datacenters d ON d.id = c.datacenter_id
"""


def cluster_id(conn: psycopg.Connection, cluster: str) -> int:
    row = conn.execute("SELECT id FROM clusters WHERE name = %s", (cluster,)).fetchone()
    if row is None:
        raise NotFound(f"cluster {cluster!r} does not exist")
    return row[0]


def insert_host(
    conn: psycopg.Connection, *, name: str, address: str, endpoint: str, cluster: str, fingerprint: str
) -> HostRecord:
    cid = cluster_id(conn, cluster)
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint)
                   VALUES (%s, %s, %s, %s, %s)""",
                (cid, name, address, endpoint, fingerprint),
            )
    except psycopg.errors.UniqueViolation as exc:
        what = "address" if "address" in str(exc.diag.constraint_name) else "name"
        value = address if what == "address" else name
        raise AlreadyExists(f"a host with {what} {value!r} is already enrolled") from None
    return get_host(conn, name)


def list_hosts(conn: psycopg.Connection) -> list[HostRecord]:
    with conn.cursor(row_factory=class_row(HostRecord)) as cur:
        return cur.execute(_SELECT_HOST + " ORDER BY h.name").fetchall()


def get_host(conn: psycopg.Connection, name: str, *, lock: bool = False) -> HostRecord:
    """With `lock`, the host's row stays locked to the end of the transaction (recording a change to it)."""
    with conn.cursor(row_factory=class_row(HostRecord)) as cur:
        row = cur.execute(_SELECT_HOST + " WHERE h.name = %s" + (" FOR UPDATE OF h" if lock else ""),
                          (name,)).fetchone()
    if row is None:
        raise NotFound(f"host {name!r} does not exist")
    return row


def delete_host(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM hosts WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"host {name!r} does not exist")


def save_report(conn: psycopg.Connection, name: str, sequence: int, state: dict[str, Any]) -> None:
    """Upsert the latest report and mark the host up, in one statement pair of one transaction."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE hosts SET last_report_at = now(), status = 'up' WHERE name = %s RETURNING id", (name,)
        ).fetchone()
        if row is None:
            raise NotFound(f"host {name!r} does not exist")
        conn.execute(
            """INSERT INTO host_network_reports (host_id, sequence, reported_at, state)
               VALUES (%s, %s, now(), %s)
               ON CONFLICT (host_id) DO UPDATE
                  SET sequence = EXCLUDED.sequence, reported_at = EXCLUDED.reported_at, state = EXCLUDED.state""",
            (row[0], sequence, Jsonb(state)),
        )


def get_report(conn: psycopg.Connection, name: str) -> ReportRecord | None:
    row = conn.execute(
        """SELECT h.name, r.sequence, r.reported_at, r.state
             FROM host_network_reports r JOIN hosts h ON h.id = r.host_id WHERE h.name = %s""",
        (name,),
    ).fetchone()
    return ReportRecord(*row) if row else None


def save_reports(conn: psycopg.Connection, rows: list[ReportRecord]) -> None:
    """Many hosts' reports in two statements; hosts removed meanwhile are skipped, not errors."""
    if not rows:
        return
    names = [r.host for r in rows]
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE hosts h SET last_report_at = v.at, status = 'up'
                 FROM unnest(%s::text[], %s::timestamptz[]) AS v(name, at) WHERE h.name = v.name""",
            (names, [r.reported_at for r in rows]),
        )
        cur.execute(
            """INSERT INTO host_network_reports (host_id, sequence, reported_at, state)
               SELECT h.id, v.sequence, v.at, v.state
                 FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::jsonb[]) AS v(name, sequence, at, state)
                 JOIN hosts h ON h.name = v.name
               ON CONFLICT (host_id) DO UPDATE
                  SET sequence = EXCLUDED.sequence, reported_at = EXCLUDED.reported_at, state = EXCLUDED.state""",
            (names, [r.sequence for r in rows], [r.reported_at for r in rows], [Jsonb(r.state) for r in rows]),
        )


def mark_heard(conn: psycopg.Connection, heard: list[tuple[str, dt.datetime]]) -> None:
    """Hosts that reported without news (heartbeats): only their last report time moves."""
    if heard:
        conn.execute(
            """UPDATE hosts h SET last_report_at = v.at, status = 'up'
                 FROM unnest(%s::text[], %s::timestamptz[]) AS v(name, at) WHERE h.name = v.name""",
            ([n for n, _ in heard], [at for _, at in heard]))


def mark_unreachable(conn: psycopg.Connection, names: list[str]) -> None:
    if names:
        conn.execute("UPDATE hosts SET status = 'unreachable' WHERE name = ANY(%s) AND status <> 'unreachable'",
                     (names,))
