"""Named queries on templates; their vNICs are mapped by store/vnics.py."""
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


@dataclass(frozen=True)
class TemplateRecord:
    id: int
    name: str
    datacenter: str
    memory_mib: int
    vcpus: int
    source_vm: str | None
    created_at: dt.datetime


_SELECT_TEMPLATE = """
    SELECT t.id, t.name, d.name AS datacenter, t.memory_mib, t.vcpus, t.source_vm, t.created_at
      FROM templates t JOIN datacenters d ON d.id = t.datacenter_id
"""


def insert_template(conn: psycopg.Connection, *, name: str, datacenter: str, memory_mib: int, vcpus: int,
                    source_vm: str | None, nics: Sequence[Vnic]) -> TemplateRecord:
    try:
        with conn.transaction():
            tid = conn.execute(
                """INSERT INTO templates (name, datacenter_id, memory_mib, vcpus, source_vm)
                   SELECT %s, id, %s, %s, %s FROM datacenters WHERE name = %s RETURNING id""",
                (name, memory_mib, vcpus, source_vm, datacenter)).fetchone()
            if tid is None:
                raise NotFound(f"datacenter {datacenter!r} does not exist")
            vnics.insert_source_vnics(conn, SourceKind.TEMPLATE, tid[0], nics)
    except psycopg.errors.UniqueViolation as exc:
        if "pci" in (exc.diag.constraint_name or ""):
            raise InvalidArgument("template.nics.pci_address", "two vNICs have the same PCI address") from None
        if (exc.diag.constraint_name or "").startswith("template_nics"):
            raise InvalidArgument("template.nics.name", "two vNICs have the same name") from None
        raise AlreadyExists(f"template {name!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument("template.name", f"refused by the database ({exc.diag.constraint_name})") from None
    return get_template(conn, name)


def get_template(conn: psycopg.Connection, name: str) -> TemplateRecord:
    with conn.cursor(row_factory=class_row(TemplateRecord)) as cur:
        row = cur.execute(_SELECT_TEMPLATE + " WHERE t.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"template {name!r} does not exist")
    return row


def list_templates(conn: psycopg.Connection) -> list[TemplateRecord]:
    with conn.cursor(row_factory=class_row(TemplateRecord)) as cur:
        return cur.execute(_SELECT_TEMPLATE + " ORDER BY t.name").fetchall()


def delete_template(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM templates WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"template {name!r} does not exist")
