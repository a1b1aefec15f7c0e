"""Named queries on snapshots; their vNICs (with MACs) are mapped by store/vnics.py."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import psycopg
from psycopg.rows import class_row

from virtfleet.errors import AlreadyExists, InvalidArgument, NotFound

from ..domain.vmorder import SourceKind
from ..domain.vnic import Vnic
from . import vnics
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


_SELECT_SNAPSHOT = """
    SELECT s.id, s.name, s.vm_id, v.name AS vm, s.memory_mib, s.vcpus, s.created_at
      FROM snapshots s JOIN vms v ON v.id = s.vm_id
"""


def insert_snapshot(conn: psycopg.Connection, *, vm: VmRecord, name: str, nics: Sequence[Vnic]) -> SnapshotRecord:
    try:
        with conn.transaction():
            sid = conn.execute(
                "INSERT INTO snapshots (vm_id, name, memory_mib, vcpus) VALUES (%s, %s, %s, %s) RETURNING id",
                (vm.id, name, vm.memory_mib, vm.vcpus)).fetchone()[0]
            vnics.insert_source_vnics(conn, SourceKind.SNAPSHOT, sid, nics)
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"snapshot {name!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument("snapshot.name", f"refused by the database ({exc.diag.constraint_name})") from None
    return get_snapshot(conn, name)


def get_snapshot(conn: psycopg.Connection, name: str) -> SnapshotRecord:
    with conn.cursor(row_factory=class_row(SnapshotRecord)) as cur:
        row = cur.execute(_SELECT_SNAPSHOT + " WHERE s.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"snapshot {name!r} does not exist")
    return row


def list_snapshots(conn: psycopg.Connection, vm: str | None = None) -> list[SnapshotRecord]:
    with conn.cursor(row_factory=class_row(SnapshotRecord)) as cur:
        if vm:
            return cur.execute(_SELECT_SNAPSHOT + " WHERE v.name = %s ORDER BY s.created_at, s.name",
                               (vm,)).fetchall()
        return cur.execute(_SELECT_SNAPSHOT + " ORDER BY v.name, s.created_at, s.name").fetchall()


def delete_snapshot(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM snapshots WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"snapshot {name!r} does not exist")
