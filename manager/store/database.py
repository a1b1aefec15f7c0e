"""The one connector: a psycopg pool opened after migrations are applied."""
from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from .migrations import apply_migrations


def open_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> ConnectionPool:
    with psycopg.connect(dsn) as conn:
        apply_migrations(conn)
    pool = ConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False, name="virtfleet")
    pool.open(wait=True, timeout=30)
    return pool
