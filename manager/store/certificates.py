"""Named queries on the certificates the manager holds for hosts (db/011_ca_rollover.sql)."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class HostCertificateRecord:
    name: str
    address: str
    endpoint: str
    cert_pem: str          # '' for a host enrolled before the manager kept certificates
    cert_fingerprint: str
    cert_pin: str
    trust_generation: int


def list_host_certificates(conn: psycopg.Connection) -> list[HostCertificateRecord]:
    with conn.cursor(row_factory=class_row(HostCertificateRecord)) as cur:
        return cur.execute(
            """SELECT name, host(address) AS address, endpoint, cert_pem, cert_fingerprint, cert_pin, trust_generation
                 FROM hosts ORDER BY name""").fetchall()


def store_certificate(conn: psycopg.Connection, name: str, *, cert_pem: str, fingerprint: str, pin: str,
                      trust_generation: int | None = None, replacing: str | None = None) -> bool:
    """The host's certificate, fingerprint and pin in one statement (one transaction).

    With `replacing`, only while the stored fingerprint is still that one: a host
    removed, re-enrolled or revoked meanwhile is not overwritten (False).
    """
    with conn.transaction():
        row = conn.execute(
            """UPDATE hosts SET cert_pem = %s, cert_fingerprint = %s, cert_pin = %s,
                                trust_generation = COALESCE(%s, trust_generation)
                WHERE name = %s AND (%s::text IS NULL OR cert_fingerprint = %s) RETURNING id""",
            (cert_pem, fingerprint, pin, trust_generation, name, replacing, replacing)).fetchone()
    return row is not None


def set_trust_generation(conn: psycopg.Connection, name: str, generation: int) -> None:
    with conn.transaction():
        conn.execute("UPDATE hosts SET trust_generation = GREATEST(trust_generation, %s) WHERE name = %s",
                     (generation, name))
