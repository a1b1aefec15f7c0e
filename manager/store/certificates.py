"""Named queries on the certificates the manager holds for hosts (db/010_host_certificates.sql,
db/011_ca_rollover.sql)."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class HostCertificateRecord:
    name: str
    address: str
    endpoint: str
    cert_pem: bytes | None     # None for a host enrolled before the manager kept certificates (db/010)
    cert_fingerprint: str
    cert_pin: str | None
    trust_generation: int


def list_host_certificates(conn: psycopg.Connection) -> list[HostCertificateRecord]:
    """Hosts that hold a trusted certificate: not pending (no certificate yet) and not revoked
    (renewing would trust the host again)."""
    with conn.cursor(row_factory=class_row(HostCertificateRecord)) as cur:
        return cur.execute(
            """SELECT name, host(address) AS address, endpoint, cert_pem, cert_fingerprint, cert_pin, trust_generation
                 FROM hosts WHERE status NOT IN ('pending', 'revoked') ORDER BY name""").fetchall()


def store_certificate(conn: psycopg.Connection, name: str, *, cert_pem: bytes, fingerprint: str, pin: str,
                      trust_generation: int | None = None, replacing: str | None = None,
                      replaced_serial: str = "") -> bool:
    """The host's renewed certificate, fingerprint and pin in one transaction.

    With `replacing`, only while the stored fingerprint is still that one and the host is
    still trusted: a host removed, re-enrolled or revoked meanwhile is not overwritten (False).
    The replaced certificate (`replaced_serial`) is recorded in revoked_certificates ("replaced").
    """
    with conn.transaction():
        row = conn.execute(
            """UPDATE hosts SET cert_pem = %s, cert_fingerprint = %s, cert_pin = %s,
                                trust_generation = COALESCE(%s, trust_generation)
                WHERE name = %s AND status NOT IN ('pending', 'revoked')
                  AND (%s::text IS NULL OR cert_fingerprint = %s) RETURNING id""",
            (cert_pem, fingerprint, pin, trust_generation, name, replacing, replacing)).fetchone()
        if row is not None and replaced_serial and replacing:
            conn.execute(
                """INSERT INTO revoked_certificates (serial, fingerprint, host, reason)
                   VALUES (%s, %s, %s, 'replaced') ON CONFLICT (serial) DO NOTHING""",
                (replaced_serial, replacing, name))
    return row is not None


def set_trust_generation(conn: psycopg.Connection, name: str, generation: int) -> None:
    with conn.transaction():
        conn.execute("UPDATE hosts SET trust_generation = GREATEST(trust_generation, %s) WHERE name = %s",
                     (generation, name))
