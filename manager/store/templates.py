"""Named queries on templates; their vNICs are mapped by store/vnics.py."""
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


@dataclass(frozen=True)
class TemplateRecord:
    id: int
    name: str
    datacenter: str
    memory_mib: int
    vcpus: int
    source_vm: str | None
    created_at: dt.datetime
    boot: BootSource
    domain_type: DomainType


_SELECT_TEMPLATE = f"""
    SELECT t.id, t.name, d.name AS datacenter, t.memory_mib, t.vcpus, t.source_vm, t.created_at,
           {boot_columns.select("t")}
      FROM templates t JOIN datacenters d ON d.id = t.datacenter_id
"""
_TEMPLATE_ROW = boot_columns.record_row(TemplateRecord)


def insert_template(conn: psycopg.Connection, *, name: str, datacenter: str, memory_mib: int, vcpus: int,
                    source_vm: str | None, nics: Sequence[Vnic], boot: BootSource, domain_type: DomainType,
                    guest_names_of_vm: int | None = None) -> TemplateRecord:
    """`guest_names_of_vm`: the VM (id) it is made from, whose vNICs' last-seen guest names it keeps."""
    try:
        with conn.transaction():
            tid = conn.execute(
                f"""INSERT INTO templates (name, datacenter_id, memory_mib, vcpus, source_vm,
                                           {", ".join(boot_columns.COLUMNS)})
                    SELECT %s, id, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM datacenters WHERE name = %s RETURNING id""",
                (name, memory_mib, vcpus, source_vm, *boot_columns.values(boot, domain_type), datacenter)).fetchone()
            if tid is None:
                raise NotFound(f"datacenter {datacenter!r} does not exist")
            vnics.insert_source_vnics(conn, SourceKind.TEMPLATE, tid[0], nics)
            if guest_names_of_vm is not None:
                guestnames.copy_to_source(conn, SourceKind.TEMPLATE, tid[0], guest_names_of_vm)
    except psycopg.errors.UniqueViolation as exc:
        if "pci" in (exc.diag.constraint_name or ""):
            raise InvalidArgument("template.nics.pci_address", "two vNICs have the same PCI address") from None
        if (exc.diag.constraint_name or "").startswith("template_nics"):
            raise InvalidArgument("template.nics.name", "two vNICs have the same name") from None
        raise AlreadyExists(f"template {name!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        field = "boot" if "boot" in (exc.diag.constraint_name or "") else "template.name"
        raise InvalidArgument(field, f"refused by the database ({exc.diag.constraint_name})") from None
    return get_template(conn, name)


def get_template(conn: psycopg.Connection, name: str) -> TemplateRecord:
    with conn.cursor(row_factory=_TEMPLATE_ROW) as cur:
        row = cur.execute(_SELECT_TEMPLATE + " WHERE t.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"template {name!r} does not exist")
    return row


def list_templates(conn: psycopg.Connection) -> list[TemplateRecord]:
    with conn.cursor(row_factory=_TEMPLATE_ROW) as cur:
        return cur.execute(_SELECT_TEMPLATE + " ORDER BY t.name").fetchall()


def delete_template(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM templates WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"template {name!r} does not exist")
