"""Named queries on VMs, their vNICs, templates and snapshots.

Bulk paths (many VMs from one template) insert with one statement per table
per batch (`unnest`, `COPY`), so a batch costs a few round trips whatever its size.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from ..errors import AlreadyExists, InvalidArgument, NotFound

NIC_COLUMNS = ("name", "position", "kind", "virtual_network", "direct_nic", "direct_mode", "virtualport", "model")


@dataclass(frozen=True)
class NicRecord:
    """A vNIC of a VM, template or snapshot. `network` is the logical network's name."""

    name: str
    position: int
    kind: str                       # network | virtual | direct
    network: str | None = None
    virtual_network: str | None = None
    direct_nic: str | None = None
    direct_mode: str | None = None
    virtualport: dict[str, Any] | None = None
    model: str = "virtio"
    mac: str | None = None
    pci_address: str | None = None
    host_device: str | None = None


@dataclass(frozen=True)
class VmRecord:
    id: int
    name: str
    cluster_id: int
    cluster: str
    datacenter: str
    host: str | None
    host_endpoint: str | None
    state: str
    memory_mib: int
    vcpus: int
    source_kind: str | None
    source_name: str | None
    source_template_id: int | None
    source_snapshot_id: int | None
    nic_rule: str | None
    first_boot_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TemplateRecord:
    id: int
    name: str
    datacenter: str
    memory_mib: int
    vcpus: int
    source_vm: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class SnapshotRecord:
    id: int
    name: str
    vm_id: int
    vm: str
    memory_mib: int
    vcpus: int
    created_at: dt.datetime


# -- VMs ----------------------------------------------------------------------------------------

_SELECT_VM = """
    SELECT v.id, v.name, v.cluster_id, c.name AS cluster, d.name AS datacenter, h.name AS host,
           h.endpoint AS host_endpoint, v.state, v.memory_mib, v.vcpus, v.source_kind, v.source_name,
           v.source_template_id, v.source_snapshot_id, v.nic_rule, v.first_boot_at, v.created_at
      FROM vms v JOIN clusters c ON c.id = v.cluster_id JOIN datacenters d ON d.id = c.datacenter_id
      LEFT JOIN hosts h ON h.id = v.host_id
"""


def get_vm(conn: psycopg.Connection, name: str, *, lock: bool = False) -> VmRecord:
    """`lock` holds the VM's row until the transaction ends, so two changes to one VM queue up."""
    query = _SELECT_VM + " WHERE v.name = %s" + (" FOR UPDATE OF v" if lock else "")
    with conn.cursor(row_factory=class_row(VmRecord)) as cur:
        row = cur.execute(query, (name,)).fetchone()
    if row is None:
        raise NotFound(f"VM {name!r} does not exist")
    return row


def list_vms(conn: psycopg.Connection) -> list[VmRecord]:
    with conn.cursor(row_factory=class_row(VmRecord)) as cur:
        return cur.execute(_SELECT_VM + " ORDER BY v.name").fetchall()


def existing_vm_names(conn: psycopg.Connection, names: Sequence[str]) -> list[str]:
    rows = conn.execute("SELECT name FROM vms WHERE name = ANY(%s) ORDER BY name", (list(names),)).fetchall()
    return [r[0] for r in rows]


def insert_vms(conn: psycopg.Connection, *, cluster_id: int, names: Sequence[str], memory_mib: int, vcpus: int,
               source_kind: str | None, source_name: str | None, template_id: int | None,
               snapshot_id: int | None, nic_rule: str | None) -> dict[str, int]:
    """Insert VMs in one statement; name → id."""
    try:
        with conn.transaction():
            rows = conn.execute(
                """INSERT INTO vms (name, cluster_id, memory_mib, vcpus, source_kind, source_name,
                                    source_template_id, source_snapshot_id, nic_rule)
                   SELECT n, %s, %s, %s, %s, %s, %s, %s, %s FROM unnest(%s::text[]) AS n
                   RETURNING name, id""",
                (cluster_id, memory_mib, vcpus, source_kind, source_name, template_id, snapshot_id, nic_rule,
                 list(names)),
            ).fetchall()
    except psycopg.errors.UniqueViolation:
        taken = existing_vm_names(conn, names)
        raise AlreadyExists(f"VM {taken[0] if taken else names[0]!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument("vm.name", f"refused by the database ({exc.diag.constraint_name})") from None
    return dict(rows)


def insert_vnics(conn: psycopg.Connection, rows: Iterable[tuple[int, NicRecord, int | None]]) -> None:
    """(vm id, vNIC, logical network id) rows in one COPY."""
    cols = ("vm_id", *NIC_COLUMNS, "network_id", "mac", "pci_address", "host_device")
    with conn.cursor() as cur:
        with cur.copy(f"COPY vnics ({', '.join(cols)}) FROM STDIN") as copy:
            for vm_id, n, network_id in rows:
                copy.write_row((vm_id, n.name, n.position, n.kind, n.virtual_network, n.direct_nic, n.direct_mode,
                                Jsonb(n.virtualport) if n.virtualport is not None else None, n.model, network_id,
                                n.mac, n.pci_address, n.host_device))


_SELECT_VNIC = """
    SELECT n.name, n.position, n.kind, net.name AS network, n.virtual_network, n.direct_nic, n.direct_mode,
           n.virtualport, n.model, n.mac::text AS mac, n.pci_address, n.host_device
      FROM vnics n LEFT JOIN networks net ON net.id = n.network_id
"""


def vm_nics(conn: psycopg.Connection, vm_id: int) -> list[NicRecord]:
    with conn.cursor(row_factory=class_row(NicRecord)) as cur:
        return cur.execute(_SELECT_VNIC + " WHERE n.vm_id = %s ORDER BY n.position", (vm_id,)).fetchall()


def nics_by_vm(conn: psycopg.Connection) -> dict[int, list[NicRecord]]:
    """Every vNIC, by VM id, in one query (listing many VMs)."""
    found: dict[int, list[NicRecord]] = {}
    with conn.cursor() as cur:
        for row in cur.execute(_SELECT_VNIC.replace("SELECT ", "SELECT n.vm_id, ", 1) + " ORDER BY n.vm_id, n.position"):
            found.setdefault(row[0], []).append(NicRecord(*row[1:]))
    return found


def set_resources(conn: psycopg.Connection, vm_id: int, memory_mib: int, vcpus: int) -> None:
    conn.execute("UPDATE vms SET memory_mib = %s, vcpus = %s WHERE id = %s", (memory_mib, vcpus, vm_id))


def vm_macs(conn: psycopg.Connection, vm_id: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT mac::text FROM vnics WHERE vm_id = %s ORDER BY position", (vm_id,))]


def delete_vm(conn: psycopg.Connection, vm_id: int) -> None:
    conn.execute("DELETE FROM vms WHERE id = %s", (vm_id,))


def set_running(conn: psycopg.Connection, vm_id: int, host_id: int | None) -> None:
    """Up on a host (stamping the first boot), or down (host_id None)."""
    conn.execute(
        """UPDATE vms SET host_id = %s, state = CASE WHEN %s::bigint IS NULL THEN 'down' ELSE 'up' END,
                          first_boot_at = CASE WHEN %s::bigint IS NULL THEN first_boot_at
                                               ELSE coalesce(first_boot_at, now()) END
            WHERE id = %s""",
        (host_id, host_id, host_id, vm_id),
    )
    if host_id is None:
        conn.execute("UPDATE vnics SET host_device = NULL WHERE vm_id = %s", (vm_id,))


def store_runtime(conn: psycopg.Connection, vm_id: int, nics: Sequence[tuple[str, str | None, str | None]]) -> None:
    """(vNIC name, PCI address, host device) as the host read them back."""
    if not nics:
        return
    conn.execute(
        """UPDATE vnics n SET pci_address = coalesce(r.pci, n.pci_address), host_device = r.dev
             FROM unnest(%s::text[], %s::text[], %s::text[]) AS r(name, pci, dev)
            WHERE n.vm_id = %s AND n.name = r.name""",
        ([n[0] for n in nics], [n[1] for n in nics], [n[2] for n in nics], vm_id),
    )


def next_position(conn: psycopg.Connection, vm_id: int) -> int:
    return conn.execute("SELECT coalesce(max(position) + 1, 0) FROM vnics WHERE vm_id = %s", (vm_id,)).fetchone()[0]


def delete_vnic(conn: psycopg.Connection, vm_id: int, name: str) -> str:
    """Remove a vNIC; returns its MAC (for the pool)."""
    row = conn.execute("DELETE FROM vnics WHERE vm_id = %s AND name = %s RETURNING mac::text",
                       (vm_id, name)).fetchone()
    if row is None:
        raise NotFound(f"vNIC {name!r} does not exist")
    return row[0]


def delete_vnics(conn: psycopg.Connection, vm_id: int) -> None:
    conn.execute("DELETE FROM vnics WHERE vm_id = %s", (vm_id,))


def count_vms_by_host(conn: psycopg.Connection, cluster_id: int) -> list[tuple[int, str, str, int]]:
    """(host id, name, endpoint, running VMs) of the cluster's hosts that are up, least loaded first."""
    return conn.execute(
        """SELECT h.id, h.name, h.endpoint, count(v.id) FROM hosts h LEFT JOIN vms v ON v.host_id = h.id
            WHERE h.cluster_id = %s AND h.status = 'up'
            GROUP BY h.id ORDER BY count(v.id), h.name""", (cluster_id,)).fetchall()


def network_ids(conn: psycopg.Connection, datacenter: str) -> dict[str, tuple[int, bool, int | None]]:
    """The datacenter's logical networks: name → (id, VM network?, VLAN)."""
    rows = conn.execute(
        """SELECT n.name, n.id, n.vm_network, n.vlan FROM networks n JOIN datacenters d ON d.id = n.datacenter_id
            WHERE d.name = %s""", (datacenter,)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def cluster(conn: psycopg.Connection, name: str) -> tuple[int, str]:
    """(cluster id, datacenter name)."""
    row = conn.execute("""SELECT c.id, d.name FROM clusters c JOIN datacenters d ON d.id = c.datacenter_id
                           WHERE c.name = %s ORDER BY c.id LIMIT 1""", (name,)).fetchone()
    if row is None:
        raise NotFound(f"cluster {name!r} does not exist")
    return row[0], row[1]


# -- templates ----------------------------------------------------------------------------------

_SELECT_TEMPLATE = """
    SELECT t.id, t.name, d.name AS datacenter, t.memory_mib, t.vcpus, t.source_vm, t.created_at
      FROM templates t JOIN datacenters d ON d.id = t.datacenter_id
"""


def insert_template(conn: psycopg.Connection, *, name: str, datacenter: str, memory_mib: int, vcpus: int,
                    source_vm: str | None, nics: Sequence[NicRecord]) -> TemplateRecord:
    try:
        with conn.transaction():
            tid = conn.execute(
                """INSERT INTO templates (name, datacenter_id, memory_mib, vcpus, source_vm)
                   SELECT %s, id, %s, %s, %s FROM datacenters WHERE name = %s RETURNING id""",
                (name, memory_mib, vcpus, source_vm, datacenter)).fetchone()
            if tid is None:
                raise NotFound(f"datacenter {datacenter!r} does not exist")
            _copy_source_nics(conn, "template_nics", "template_id", tid[0], nics, with_mac=False)
    except psycopg.errors.UniqueViolation as exc:
        if "pci" in (exc.diag.constraint_name or ""):
            raise InvalidArgument("template.nics.pci_address", "two vNICs have the same PCI address") from None
        if (exc.diag.constraint_name or "").startswith("template_nics"):
            raise InvalidArgument("template.nics.name", "two vNICs have the same name") from None
        raise AlreadyExists(f"template {name!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument("template.name", f"refused by the database ({exc.diag.constraint_name})") from None
    return get_template(conn, name)


def _copy_source_nics(conn: psycopg.Connection, table: str, owner_col: str, owner_id: int,
                      nics: Sequence[NicRecord], *, with_mac: bool) -> None:
    cols = (owner_col, *NIC_COLUMNS, "network", "pci_address", *(("mac",) if with_mac else ()))
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for n in nics:
                row = [owner_id, n.name, n.position, n.kind, n.virtual_network, n.direct_nic, n.direct_mode,
                       Jsonb(n.virtualport) if n.virtualport is not None else None, n.model, n.network,
                       n.pci_address]
                copy.write_row(row + [n.mac] if with_mac else row)


def get_template(conn: psycopg.Connection, name: str) -> TemplateRecord:
    with conn.cursor(row_factory=class_row(TemplateRecord)) as cur:
        row = cur.execute(_SELECT_TEMPLATE + " WHERE t.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"template {name!r} does not exist")
    return row


def list_templates(conn: psycopg.Connection) -> list[TemplateRecord]:
    with conn.cursor(row_factory=class_row(TemplateRecord)) as cur:
        return cur.execute(_SELECT_TEMPLATE + " ORDER BY t.name").fetchall()


_SOURCE_NIC_COLUMNS = """name, position, kind, network, virtual_network, direct_nic, direct_mode, virtualport,
                         model, {mac} AS mac, pci_address"""


def template_nics(conn: psycopg.Connection, template_id: int) -> list[NicRecord]:
    with conn.cursor(row_factory=class_row(NicRecord)) as cur:
        return cur.execute(f"SELECT {_SOURCE_NIC_COLUMNS.format(mac='NULL::text')} FROM template_nics "
                           "WHERE template_id = %s ORDER BY position", (template_id,)).fetchall()


def delete_template(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM templates WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"template {name!r} does not exist")


# -- snapshots ----------------------------------------------------------------------------------

_SELECT_SNAPSHOT = """
    SELECT s.id, s.name, s.vm_id, v.name AS vm, s.memory_mib, s.vcpus, s.created_at
      FROM snapshots s JOIN vms v ON v.id = s.vm_id
"""


def insert_snapshot(conn: psycopg.Connection, *, vm: VmRecord, name: str, nics: Sequence[NicRecord]) -> SnapshotRecord:
    try:
        with conn.transaction():
            sid = conn.execute(
                "INSERT INTO snapshots (vm_id, name, memory_mib, vcpus) VALUES (%s, %s, %s, %s) RETURNING id",
                (vm.id, name, vm.memory_mib, vm.vcpus)).fetchone()[0]
            _copy_source_nics(conn, "snapshot_nics", "snapshot_id", sid, nics, with_mac=True)
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


def snapshot_nics(conn: psycopg.Connection, snapshot_id: int) -> list[NicRecord]:
    with conn.cursor(row_factory=class_row(NicRecord)) as cur:
        return cur.execute(f"SELECT {_SOURCE_NIC_COLUMNS.format(mac='mac::text')} FROM snapshot_nics "
                           "WHERE snapshot_id = %s ORDER BY position", (snapshot_id,)).fetchall()


def delete_snapshot(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("DELETE FROM snapshots WHERE name = %s", (name,)).rowcount == 0:
        raise NotFound(f"snapshot {name!r} does not exist")


def source_nics(conn: psycopg.Connection, vm: VmRecord) -> list[NicRecord] | None:
    """The vNICs of the template or snapshot `vm` was made from; None when that source is gone."""
    if vm.source_kind == "template" and vm.source_template_id is not None:
        return template_nics(conn, vm.source_template_id)
    if vm.source_kind == "snapshot" and vm.source_snapshot_id is not None:
        return snapshot_nics(conn, vm.source_snapshot_id)
    return None

