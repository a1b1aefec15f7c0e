"""Named queries on vm_migrations (db/017): one row per migration the manager started.

(Not `store/migrations.py`: that name holds the schema migrations of db/.)

The running row is the VM's claim for the whole migration: while it exists the VM is
busy (store/vms.py reads it as `migrating_to`), with no lifetime — a migration may run
longer than a claim lives, and a manager that died leaves the row for the next one to
settle (service/migrations.py). The partial unique index keeps one running per VM, so
two managers' (or two requests') migrations of one VM cannot both start.
"""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb
from virtfleet.errors import FailedPrecondition

from ..domain.migration import MigrationOptions, RunningMigration
from ..domain.vnic import VnicRuntime
from . import vnics as vnic_store

MESSAGE_MAX = 2000


def start(conn: psycopg.Connection, vm_id: int, vm: str, source_host_id: int, dest_host_id: int,
          options: MigrationOptions) -> int:
    """Insert the running row; FailedPrecondition when one runs for the VM already (the index says so)."""
    try:
        with conn.transaction():
            return conn.execute(
                """INSERT INTO vm_migrations (vm_id, source_host_id, dest_host_id, options)
                   VALUES (%s, %s, %s, %s) RETURNING id""",
                (vm_id, source_host_id, dest_host_id, Jsonb(options.as_json()))).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise FailedPrecondition(f"VM {vm} is being migrated already; wait for that migration to end or cancel "
                                 f"it (`virtfleet vm migrate --cancel {vm}`)") from None


def finish(conn: psycopg.Connection, migration_id: int, state: str, message: str = "",
           downtime_ms: int | None = None) -> bool:
    """End a running row; False when it was not running any more (settled by someone else)."""
    return conn.execute(
        """UPDATE vm_migrations SET state = %s, message = %s, downtime_ms = %s, finished_at = now()
            WHERE id = %s AND state = 'running'""",
        (state, message[:MESSAGE_MAX], downtime_ms, migration_id)).rowcount == 1


def record_moved(conn: psycopg.Connection, migration_id: int, vm_id: int, source_host_id: int | None,
                 dest_host_id: int, runtime: list[VnicRuntime], message: str, downtime_ms: int | None) -> bool:
    """The VM runs on the destination: its host, its vNICs' devices there and the row, in the caller's
    one transaction. False (nothing changed) when the row was no longer running or the VM no longer
    recorded up on the source."""
    held = conn.execute("SELECT state FROM vm_migrations WHERE id = %s FOR UPDATE", (migration_id,)).fetchone()
    if held is None or held[0] != "running":
        return False
    moved = conn.execute(
        """UPDATE vms SET host_id = %s WHERE id = %s AND state = 'up' AND host_id IS NOT DISTINCT FROM %s""",
        (dest_host_id, vm_id, source_host_id)).rowcount == 1
    if not moved:
        return False
    finish(conn, migration_id, "succeeded", message, downtime_ms)
    # the devices are the destination's now; those the destination did not report are unknown, not the source's
    conn.execute("UPDATE vnics SET host_device = NULL WHERE vm_id = %s", (vm_id,))
    vnic_store.store_runtime(conn, vm_id, runtime)
    return True


_RUNNING = """
    SELECT m.id, m.vm_id, v.name, m.source_host_id, s.name, m.dest_host_id, d.name
      FROM vm_migrations m JOIN vms v ON v.id = m.vm_id
      LEFT JOIN hosts s ON s.id = m.source_host_id LEFT JOIN hosts d ON d.id = m.dest_host_id
     WHERE m.state = 'running'
"""


def running(conn: psycopg.Connection) -> list[RunningMigration]:
    return [RunningMigration(*r) for r in conn.execute(_RUNNING + " ORDER BY m.id").fetchall()]


def running_for(conn: psycopg.Connection, vm_id: int) -> RunningMigration | None:
    row = conn.execute(_RUNNING + " AND m.vm_id = %s", (vm_id,)).fetchone()
    return RunningMigration(*row) if row else None


def state_of(conn: psycopg.Connection, migration_id: int) -> tuple[str, str, int | None]:
    """(state, message, downtime_ms) of one row."""
    return tuple(conn.execute("SELECT state, message, downtime_ms FROM vm_migrations WHERE id = %s",
                              (migration_id,)).fetchone())
