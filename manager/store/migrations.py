"""Numbered SQL migrations from db/, each applied once inside its own transaction.

An advisory lock makes concurrent manager starts wait for each other instead
of racing to apply the same file.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x76666D67  # "vfmg"
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def default_migrations_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "db"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            raise ValueError(f"migration file name not NNN_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


def apply_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[int]:
    """Apply what is missing; returns the versions applied now (empty when up to date)."""
    migrations = discover(directory or default_migrations_dir())
    applied_now: list[int] = []
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for mig in migrations:
            if mig.version in done:
                continue
            with conn.transaction():
                conn.execute(mig.path.read_text())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (mig.version, mig.name)
                )
            log.info("applied migration %03d_%s", mig.version, mig.name)
            applied_now.append(mig.version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now
