"""Named queries on snapshots; their vNICs (with MACs) are mapped by store/vnics.py."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import psycopg

from virtfleet.errors import AlreadyExists, InvalidArgument, NotFound

from ..domain.boot import BootSource, DomainType
from ..domain.vmorder import SourceKind
from ..domain.vnic import Vnic
from . import boot as boot_columns
from . import guestnames, vnics
from .vms import VmRecord


@dataclass(frozen=True)
class SnapshotRecord:
    id: int
    name: str
    vm_id: int
    vm: str
    memory_mib: int
    vcpus: int
    created_at: dt.datetime
    boot: BootSource                # its VM's when it was taken
    domain_type: DomainType


_SELECT_SNAPSHOT = f"""
    SELECT s.id, s.name, s.vm_id, v.name AS vm, s.memory_mib, s.vcpus, s.created_at, {boot_columns.select("s")}
      FROM snapshots s JOIN vms v ON v.id = s.vm_id
"""
_SNAPSHOT_ROW = boot_columns.record_row(SnapshotRecord)


def insert_snapshot(conn: psycopg.Connection, *, vm: VmRecord, name: str, nics: Sequence[Vnic]) -> SnapshotRecord:
    try:
        with conn.transaction():
            sid = conn.execute(
                f"""INSERT INTO snapshots (vm_id, name, memory_mib, vcpus, {", ".join(boot_columns.COLUMNS)})
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                (vm.id, name, vm.memory_mib, vm.vcpus, *boot_columns.values(vm.boot, vm.domain_type))).fetchone()[0]
            vnics.insert_source_vnics(conn, SourceKind.SNAPSHOT, sid, nics)
            guestnames.copy_to_source(conn, SourceKind.SNAPSHOT, sid, vm.id)
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"snapshot {name!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument("snapshot.name", f"refused by the database ({exc.diag.constraint_name})") from None
    return get_snapshot(conn, name)


def get_snapshot(conn: psycopg.Connection, name: str) -> SnapshotRecord:
    with conn.cursor(row_factory=_SNAPSHOT_ROW) as cur:
        row = cur.execute(_SELECT_SNAPSHOT + " WHERE s.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"snapshot {name!r} does not exist")
    return row


def list_snapshots(conn: psycopg.Connection, vm: str | None = None) -> list[SnapshotRecord]:
    with conn.cursor(row_factory=_SNAPSHOT_ROW) as cur:
        if vm:
            return cur.execute(_SELECT_SNAPSHOT + " WHERE v.name = %s ORDER BY s.created_at, s.name",
                               (vm,)).fetchall()
        return cur.execute(_SELECT_SNAPSHOT + " ORDER BY v.name, s.created_at, s.name").fetchall()


def delete_snapshot(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM snapshots WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"snapshot {name!r} does not exist")
