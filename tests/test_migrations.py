"""Migrations on a real PostgreSQL: applied once, recorded, safe to re-run, atomic."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from manager.store.migrations import apply_migrations, discover, default_migrations_dir


def test_migrations_create_the_inventory_tables(empty_db):
    with psycopg.connect(empty_db) as conn:
        applied = apply_migrations(conn)
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        default_cluster = conn.execute(
            "SELECT d.name, c.name FROM clusters c JOIN datacenters d ON d.id = c.datacenter_id").fetchall()
    assert applied == [m.version for m in discover(default_migrations_dir())]
    assert {"datacenters", "clusters", "hosts", "host_network_reports", "schema_migrations"} <= tables
    assert versions == applied
    assert default_cluster == [("Default", "Default")]


def test_migrations_are_safe_to_rerun(empty_db):
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
        assert apply_migrations(conn) == []
        assert conn.execute("SELECT count(*) FROM datacenters").fetchone()[0] == 1


def test_a_failing_migration_leaves_nothing_half_applied(empty_db, tmp_path: Path):
    (tmp_path / "001_good.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int); SELECT no_such_function();")
    with psycopg.connect(empty_db) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            apply_migrations(conn, tmp_path)
        conn.rollback()
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert "a" in tables and "b" not in tables
    assert versions == [1]


def test_migration_files_must_be_numbered(tmp_path: Path):
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNN_name.sql"):
        discover(tmp_path)
