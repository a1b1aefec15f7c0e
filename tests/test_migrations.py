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


def test_stored_vnic_kinds_are_renamed_to_the_projects_words(empty_db, tmp_path: Path):
    """Rows written under 004's words (network, virtual) read as bridge and virtual_network after 005."""
    for m in discover(default_migrations_dir()):
        if m.version <= 4:
            (tmp_path / m.path.name).write_text(m.path.read_text())
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn, tmp_path)
        cluster, dc, net = conn.execute(
            """SELECT c.id, c.datacenter_id, n.id FROM clusters c JOIN networks n ON n.datacenter_id = c.datacenter_id
                WHERE n.name = 'ovirtmgmt'""").fetchone()
        vm = conn.execute("INSERT INTO vms (name, cluster_id, memory_mib, vcpus) VALUES ('vm1', %s, 64, 1) RETURNING id",
                          (cluster,)).fetchone()[0]
        conn.execute("""INSERT INTO vnics (vm_id, name, position, kind, network_id, virtual_network, direct_nic,
                                           direct_mode, mac)
                        VALUES (%s, 'a', 0, 'network', %s, NULL, NULL, NULL, '02:00:00:00:00:01'),
                               (%s, 'b', 1, 'virtual', NULL, 'default', NULL, NULL, '02:00:00:00:00:02'),
                               (%s, 'c', 2, 'direct', NULL, NULL, 'eth1', 'vepa', '02:00:00:00:00:03')""",
                     (vm, net, vm, vm))
        tpl = conn.execute("INSERT INTO templates (name, datacenter_id, memory_mib, vcpus) VALUES ('t1', %s, 64, 1) "
                           "RETURNING id", (dc,)).fetchone()[0]
        conn.execute("INSERT INTO template_nics (template_id, name, position, kind, network) "
                     "VALUES (%s, 'a', 0, 'network', 'ovirtmgmt')", (tpl,))
        assert apply_migrations(conn) == [m.version for m in discover(default_migrations_dir()) if m.version > 4]
        kinds = conn.execute("SELECT name, kind FROM vnics ORDER BY name").fetchall()
        assert kinds == [("a", "bridge"), ("b", "virtual_network"), ("c", "direct")]
        assert conn.execute("SELECT kind FROM template_nics").fetchone()[0] == "bridge"
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE vnics SET kind = 'network' WHERE name = 'a'")
