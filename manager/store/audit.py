"""Named queries that gather the audit's inputs for the whole datacenter in a few statements.

One query per kind of record, never one per host: the audit must stay a few
seconds for a thousand hosts. The VM and MAC-pool tables belong to other
parts of the manager; when a database predates them the audit skips those
categories instead of failing.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import psycopg


@dataclass(frozen=True)
class DesiredAttachment:
    host: str
    network: str
    nic: str
    vlan: int | None
    mtu: int
    vm_network: bool
    ipv4_method: str
    ipv4_address: str | None
    ipv4_prefixlen: int | None
    ipv4_gateway: str | None
    default_route: bool


class VnicRow(NamedTuple):
    vm: str
    name: str
    mac: str
    kind: str
    host: str | None
    network: str | None
    direct_nic: str | None
    direct_mode: str | None
    host_device: str | None
    pci_address: str | None
    position: int


@dataclass(frozen=True)
class NicOrderRow:
    vm: str
    source_kind: str
    source_name: str
    source: list[tuple[str, str | None, str | None]]   # (name, pci address, mac)
    nics: list[tuple[str, str | None, str | None]]


@dataclass(frozen=True)
class GuestNicRow:
    vm: str
    source_kind: str
    source_name: str
    source: list[tuple[str, str | None]]   # (vNIC name, guest name) as the source kept them
    nics: list[tuple[str, str | None]]     # the VM's, in guest order (PCI address, then position)


def has_table(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def desired_attachments(conn: psycopg.Connection) -> dict[str, list[DesiredAttachment]]:
    rows = conn.execute(
        """SELECT h.name, n.name, a.nic, n.vlan, n.mtu, n.vm_network, a.ipv4_method, host(a.ipv4_address),
                  a.ipv4_prefixlen, host(a.ipv4_gateway), a.default_route
             FROM host_network_attachments a JOIN hosts h ON h.id = a.host_id JOIN networks n ON n.id = a.network_id
            ORDER BY h.name, n.name""").fetchall()
    by_host: dict[str, list[DesiredAttachment]] = defaultdict(list)
    for row in rows:
        by_host[row[0]].append(DesiredAttachment(*row))
    return by_host


def vnics(conn: psycopg.Connection) -> list[tuple]:
    """Rows in VnicRow's field order, left as plain tuples: the caller types them once, not twice."""
    if not has_table(conn, "vnics"):
        return []
    rows = conn.execute(
        """SELECT v.name, n.name, n.mac::text, n.kind, h.name, net.name, n.direct_nic, n.direct_mode,
                  n.host_device, n.pci_address, n.position, n.link_down
             FROM vnics n JOIN vms v ON v.id = n.vm_id LEFT JOIN hosts h ON h.id = v.host_id
             LEFT JOIN networks net ON net.id = n.network_id""").fetchall()
    return rows


def allocated_macs(conn: psycopg.Connection) -> set[int] | None:
    """Every MAC a pool handed out (48-bit integers, as pools keep them), or None when there are no pools."""
    if not has_table(conn, "mac_leases"):
        return None
    return {row[0] for row in conn.execute("SELECT DISTINCT mac FROM mac_leases")}


def nic_orders(conn: psycopg.Connection) -> list[NicOrderRow]:
    if not (has_table(conn, "template_nics") and has_table(conn, "snapshot_nics")):
        return []
    rows = conn.execute(
        """SELECT v.name, v.source_kind, v.source_name,
                  CASE v.source_kind
                      WHEN 'template' THEN (SELECT coalesce(json_agg(json_build_array(t.name, t.pci_address, NULL)
                                                        ORDER BY t.position), '[]')
                                              FROM template_nics t WHERE t.template_id = v.source_template_id)
                      ELSE (SELECT coalesce(json_agg(json_build_array(s.name, s.pci_address, s.mac::text)
                                            ORDER BY s.position), '[]')
                              FROM snapshot_nics s WHERE s.snapshot_id = v.source_snapshot_id)
                  END,
                  (SELECT coalesce(json_agg(json_build_array(n.name, n.pci_address, n.mac::text) ORDER BY n.position),
                                   '[]') FROM vnics n WHERE n.vm_id = v.id)
             FROM vms v
            WHERE (v.source_kind = 'template' AND v.source_template_id IS NOT NULL)
               OR (v.source_kind = 'snapshot' AND v.source_snapshot_id IS NOT NULL)
            ORDER BY v.name""").fetchall()
    return [NicOrderRow(vm, kind, name, [tuple(x) for x in source], [tuple(x) for x in nics])
            for vm, kind, name, source, nics in rows]


def guest_nics(conn: psycopg.Connection) -> list[GuestNicRow]:
    """VMs made from a source that keeps guest names and whose own guest reported some (others: nothing to
    compare). PCI addresses are fixed-width lower-case hex, so their text order is the guest's order."""
    if not has_table(conn, "template_nics") or not _has_column(conn, "template_nics", "guest_name"):
        return []
    rows = conn.execute(
        """SELECT v.name, v.source_kind, v.source_name,
                  CASE v.source_kind
                      WHEN 'template' THEN (SELECT json_agg(json_build_array(t.name, t.guest_name))
                                              FROM template_nics t WHERE t.template_id = v.source_template_id)
                      ELSE (SELECT json_agg(json_build_array(s.name, s.guest_name))
                              FROM snapshot_nics s WHERE s.snapshot_id = v.source_snapshot_id)
                  END AS source,
                  (SELECT json_agg(json_build_array(n.name, n.guest_name)
                                   ORDER BY n.pci_address NULLS LAST, n.position)
                     FROM vnics n WHERE n.vm_id = v.id AND NOT n.unplugging) AS nics
             FROM vms v
            WHERE EXISTS (SELECT 1 FROM vnics n WHERE n.vm_id = v.id AND n.guest_name IS NOT NULL)
              AND ((v.source_kind = 'template' AND EXISTS (
                      SELECT 1 FROM template_nics t WHERE t.template_id = v.source_template_id
                                                      AND t.guest_name IS NOT NULL))
                OR (v.source_kind = 'snapshot' AND EXISTS (
                      SELECT 1 FROM snapshot_nics s WHERE s.snapshot_id = v.source_snapshot_id
                                                      AND s.guest_name IS NOT NULL)))
            ORDER BY v.name""").fetchall()
    return [GuestNicRow(vm, kind, name, [tuple(x) for x in source or []], [tuple(x) for x in nics or []])
            for vm, kind, name, source, nics in rows]


def _has_column(conn: psycopg.Connection, table: str, column: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = %s "
                        "AND column_name = %s)", (table, column)).fetchone()[0]
