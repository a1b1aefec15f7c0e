"""Named queries on admins (db/008_admins.sql)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from virtfleet.errors import AlreadyExists, NotFound


@dataclass(frozen=True)
class AdminRecord:
    name: str
    role: str
    cert_fingerprint: str
    cert_serial: str
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None


_SELECT = "SELECT name, role, cert_fingerprint, cert_serial, created_at, created_by, revoked_at FROM admins"


def host_named(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM hosts WHERE name = %s", (name,)).fetchone() is not None


def insert_admin(conn: psycopg.Connection, *, name: str, role: str, fingerprint: str, serial: str,
                 created_by: str) -> AdminRecord:
    try:
        with conn.transaction():
            conn.execute("""INSERT INTO admins (name, role, cert_fingerprint, cert_serial, created_by)
                            VALUES (%s, %s, %s, %s, %s)""", (name, role, fingerprint, serial, created_by))
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"admin {name!r} already exists (revoke it first to issue a new certificate)") from None
    return valid_admin(conn, name)


def list_admins(conn: psycopg.Connection) -> list[AdminRecord]:
    with conn.cursor(row_factory=class_row(AdminRecord)) as cur:
        return cur.execute(_SELECT + " ORDER BY name, created_at").fetchall()


def valid_admin(conn: psycopg.Connection, name: str) -> AdminRecord:
    with conn.cursor(row_factory=class_row(AdminRecord)) as cur:
        row = cur.execute(_SELECT + " WHERE name = %s AND revoked_at IS NULL", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no admin named {name!r} (or it was revoked)")
    return row


def by_fingerprint(conn: psycopg.Connection, fingerprint: str) -> AdminRecord | None:
    """Revoked ones too: the caller decides (a revoked certificate is refused)."""
    with conn.cursor(row_factory=class_row(AdminRecord)) as cur:
        return cur.execute(_SELECT + " WHERE cert_fingerprint = %s", (fingerprint,)).fetchone()


def revoke_admin(conn: psycopg.Connection, name: str) -> AdminRecord:
    with conn.cursor(row_factory=class_row(AdminRecord)) as cur:
        row = cur.execute("UPDATE admins SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL "
                          "RETURNING name, role, cert_fingerprint, cert_serial, created_at, created_by, revoked_at",
                          (name,)).fetchone()
    if row is None:
        raise NotFound(f"no admin named {name!r} (or it was revoked)")
    return row


def set_role(conn: psycopg.Connection, name: str, role: str) -> AdminRecord:
    with conn.cursor(row_factory=class_row(AdminRecord)) as cur:
        row = cur.execute("UPDATE admins SET role = %s WHERE name = %s AND revoked_at IS NULL "
                          "RETURNING name, role, cert_fingerprint, cert_serial, created_at, created_by, revoked_at",
                          (role, name)).fetchone()
    if row is None:
        raise NotFound(f"no admin named {name!r} (or it was revoked)")
    return row
