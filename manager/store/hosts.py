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
    cert_pin: str | None = None   # the name TLS must find in the agent's certificate; None: call it not at all
    status_reason: str = ""       # why it is non-operational ('' when it is not; kept while unreachable)
    maintenance: str = ""         # the admin's state beside `status`: '' in service, 'preparing', 'maintenance'
    memory_total_mib: int | None = None   # what its agent said it has (GetHostResources); None: not known yet

    @property
    def shown_status(self) -> str:
        """The status the API shows: maintenance, while set, over the monitored one (which keeps being judged)."""
        return {"maintenance": "maintenance", "preparing": "preparing-maintenance"}.get(self.maintenance, self.status)


@dataclass(frozen=True)
class TrustedCertificate:
    """What the manager stores of the certificate it issued a host (pinning: manager/pki.py)."""

    pem: bytes
    fingerprint: str
    pin: str


@dataclass(frozen=True)
class TokenClaim:
    """An enrollment token's row, locked, and the host it enrolls."""

    token_id: int
    host: HostRecord
    expired: bool
    used: bool


@dataclass(frozen=True)
class HostPin:
    status: str
    pin: str | None
    has_certificate: bool   # False: a row from before pinning (db/010) or pending/revoked


class TokenRefused(Exception):
    """Why a token cannot enroll: "unknown", "expired" or "already used"."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class ReportRecord:
    """One host's newest network report, as stored (and as the monitor writes it, in batches)."""

    host: str
    sequence: int
    reported_at: dt.datetime
    state: dict[str, Any]


@dataclass(frozen=True)
class OperationalChange:
    """A host's operational verdict as stored before and after one update."""

    host: str
    status: str          # after
    old_reason: str
    reason: str


# A report from a host whose certificate was revoked meanwhile (one in flight) leaves it revoked; a
# host that lacks a required network (status_reason, service/operational.py) reports as non-operational.
_UP = ("CASE WHEN status IN ('pending', 'revoked') THEN status "
       "WHEN status_reason <> '' THEN 'non-operational' ELSE 'up' END")

_SELECT_HOST = """
    SELECT h.id, h.name, host(h.address) AS address, h.endpoint, d.name AS datacenter,
           c.name AS cluster, h.status, h.cert_fingerprint, h.enrolled_at, h.last_report_at, h.cert_pin,
           h.status_reason, h.maintenance, h.memory_total_mib
      FROM hosts h JOIN clusters c ON c.id = h.cluster_id JOIN datacenters d ON d.id = c.datacenter_id
"""


def cluster_id(conn: psycopg.Connection, cluster: str) -> int:
    row = conn.execute("SELECT id FROM clusters WHERE name = %s", (cluster,)).fetchone()
    if row is None:
        raise NotFound(f"cluster {cluster!r} does not exist")
    return row[0]


def insert_host(
    conn: psycopg.Connection, *, name: str, address: str, endpoint: str, cluster: str,
    cert: TrustedCertificate | None,
) -> HostRecord:
    """With `cert`, an enrolled host; without, one "pending" until its token brings a CSR."""
    cid = cluster_id(conn, cluster)
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, cert_pem, cert_pin,
                                      status)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                (cid, name, address, endpoint, cert.fingerprint if cert else "", cert.pem if cert else None,
                 cert.pin if cert else None, "enrolled" if cert else "pending"),
            )
    except psycopg.errors.UniqueViolation as exc:
        what = "address" if "address" in str(exc.diag.constraint_name) else "name"
        value = address if what == "address" else name
        raise AlreadyExists(f"a host with {what} {value!r} is already enrolled") from None
    return get_host(conn, name)


def admin_names(conn: psycopg.Connection) -> frozenset[str]:
    """Names of admin identities (db/008_admins.sql), which no host may take; none before 008."""
    if conn.execute("SELECT to_regclass('admins')").fetchone()[0] is None:
        return frozenset()
    return frozenset(r[0] for r in conn.execute("SELECT name FROM admins"))


def insert_token(conn: psycopg.Connection, host_id: int, token_hash: str, ttl_s: float) -> dt.datetime:
    row = conn.execute(
        """INSERT INTO enroll_tokens (host_id, token_hash, expires_at)
           VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING expires_at""",
        (host_id, token_hash, ttl_s)).fetchone()
    return row[0]


def claim_token(conn: psycopg.Connection, token_hash: str) -> TokenClaim:
    """The token's row and its host's, locked to the end of the caller's transaction (one use at a time)."""
    row = conn.execute(
        """SELECT t.id, h.name, t.expires_at <= now(), t.used_at IS NOT NULL
             FROM enroll_tokens t JOIN hosts h ON h.id = t.host_id
            WHERE t.token_hash = %s FOR UPDATE OF t, h""", (token_hash,)).fetchone()
    if row is None:
        raise TokenRefused("unknown")
    token_id, name, expired, used = row
    return TokenClaim(token_id, get_host(conn, name), expired, used)


def use_token(conn: psycopg.Connection, token_id: int) -> None:
    conn.execute("UPDATE enroll_tokens SET used_at = now() WHERE id = %s", (token_id,))


def trust_certificate(conn: psycopg.Connection, name: str, cert: TrustedCertificate) -> None:
    """The host's certificate from now on; the status moves from pending/revoked to enrolled."""
    conn.execute(
        """UPDATE hosts SET cert_pem = %s, cert_fingerprint = %s, cert_pin = %s,
                  status = CASE WHEN status IN ('pending', 'revoked') THEN 'enrolled' ELSE status END
            WHERE name = %s""", (cert.pem, cert.fingerprint, cert.pin, name))


def revoke_certificate(conn: psycopg.Connection, name: str, reason: str, *, serial: str) -> str | None:
    """Record the host's current certificate as revoked and trust none for it; its fingerprint (None
    when it held none). `serial` is the certificate's (the caller reads it from the stored PEM)."""
    row = conn.execute("SELECT cert_fingerprint, cert_pem FROM hosts WHERE name = %s FOR UPDATE",
                       (name,)).fetchone()
    if row is None:
        raise NotFound(f"host {name!r} does not exist")
    fingerprint, pem = row
    if pem is not None:
        conn.execute(
            """INSERT INTO revoked_certificates (serial, fingerprint, host, reason) VALUES (%s, %s, %s, %s)
               ON CONFLICT (serial) DO NOTHING""", (serial, fingerprint, name, reason))
    conn.execute("""UPDATE hosts SET cert_pem = NULL, cert_pin = NULL, status = 'revoked' WHERE name = %s""",
                 (name,))
    return fingerprint if pem is not None else None


def certificate_pem(conn: psycopg.Connection, name: str) -> bytes | None:
    row = conn.execute("SELECT cert_pem FROM hosts WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"host {name!r} does not exist")
    return bytes(row[0]) if row[0] is not None else None


def host_pin(conn: psycopg.Connection, name: str) -> HostPin | None:
    row = conn.execute("SELECT status, cert_pin, cert_pem IS NOT NULL FROM hosts WHERE name = %s",
                       (name,)).fetchone()
    return HostPin(*row) if row else None


def is_revoked(conn: psycopg.Connection, serial: str) -> bool:
    return conn.execute("SELECT 1 FROM revoked_certificates WHERE serial = %s", (serial,)).fetchone() is not None


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
            "UPDATE hosts SET last_report_at = now(), status = " + _UP + " WHERE name = %s RETURNING id", (name,)
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
            """UPDATE hosts h SET last_report_at = v.at, status = """ + _UP + """
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
            """UPDATE hosts h SET last_report_at = v.at, status = """ + _UP + """
                 FROM unnest(%s::text[], %s::timestamptz[]) AS v(name, at) WHERE h.name = v.name""",
            ([n for n, _ in heard], [at for _, at in heard]))


def mark_unreachable(conn: psycopg.Connection, names: list[str]) -> None:
    if names:
        conn.execute("UPDATE hosts SET status = 'unreachable' WHERE name = ANY(%s) "
                     "AND status NOT IN ('unreachable', 'pending', 'revoked')", (names,))


def set_operational(conn: psycopg.Connection, name: str, reason: str) -> OperationalChange | None:
    """Record the host's verdict ('' operational, else why not); the status moves between up and
    non-operational only (an unreachable, enrolled, pending or revoked host keeps its status, and its
    next report applies the reason). None when the host does not exist (removed meanwhile)."""
    row = conn.execute(
        """UPDATE hosts h SET status_reason = %(reason)s,
                  status = CASE WHEN h.status IN ('up', 'non-operational')
                                THEN CASE WHEN %(reason)s = '' THEN 'up' ELSE 'non-operational' END
                                ELSE h.status END
             FROM (SELECT id, status_reason FROM hosts WHERE name = %(name)s FOR UPDATE) old
            WHERE h.id = old.id
        RETURNING h.status, old.status_reason""", {"name": name, "reason": reason}).fetchone()
    return OperationalChange(name, row[0], row[1], reason) if row else None


MAINTENANCE_STATES = ("", "preparing", "maintenance")


def set_maintenance(conn: psycopg.Connection, host: str, state: str) -> str:
    """Set the host's maintenance state ('' back in service, 'preparing', 'maintenance'); returns the one it had.

    Only this column moves: the monitored status beside it (up, unreachable, non-operational) keeps
    being written by reports and verdicts as before, and shows again once maintenance is cleared.
    """
    if state not in MAINTENANCE_STATES:
        raise ValueError(f"maintenance state {state!r} is not one of {MAINTENANCE_STATES}")
    row = conn.execute(
        """UPDATE hosts h SET maintenance = %s
             FROM (SELECT id, maintenance FROM hosts WHERE name = %s FOR UPDATE) old
            WHERE h.id = old.id RETURNING old.maintenance""", (state, host)).fetchone()
    if row is None:
        raise NotFound(f"host {host!r} does not exist")
    return row[0]


def set_memory(conn: psycopg.Connection, host: str, memory_total_mib: int) -> None:
    """The memory the host's agent reported (GetHostResources); a host removed meanwhile is skipped."""
    conn.execute("UPDATE hosts SET memory_total_mib = %s WHERE name = %s AND memory_total_mib IS DISTINCT FROM %s",
                 (memory_total_mib, host, memory_total_mib))


def drop_unused_tokens(conn: psycopg.Connection, host_id: int) -> None:
    """A new token replaces the host's earlier unused ones."""
    conn.execute("DELETE FROM enroll_tokens WHERE host_id = %s AND used_at IS NULL", (host_id,))
