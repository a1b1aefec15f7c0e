"""Named queries for placement: a cluster's hosts with their load, the direct vNICs on them, their networks.

A VM counts on the host it runs on and, while a migration to another host runs
(vm_migrations), on that destination too: two placements made while migrations
are in flight (host maintenance runs several) see the memory and passthrough
NICs already promised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from psycopg.rows import class_row

from .networks import AttachmentRecord, NetworkRecord


@dataclass(frozen=True)
class PlacementHost:
    id: int
    name: str
    cluster: str
    status: str
    status_reason: str
    maintenance: str
    memory_total_mib: int | None
    vms_memory_mib: int
    vm_count: int


class DirectUseRow(NamedTuple):
    host_id: int
    vm: str
    parent: str
    mode: str


class HostAttachmentRow(NamedTuple):
    host_id: int
    network: NetworkRecord
    attachment: AttachmentRecord


# The VMs on each host: where they run, and where a running migration takes them. `%(vm)s` is left out
# (the VM being placed does not compete with itself).
_ON_HOSTS = """
    SELECT v.host_id AS host_id, v.id AS vm_id FROM vms v
     WHERE v.state = 'up' AND v.host_id IS NOT NULL AND v.id <> %(vm)s
    UNION
    SELECT m.dest_host_id, m.vm_id FROM vm_migrations m
     WHERE m.state = 'running' AND m.dest_host_id IS NOT NULL AND m.vm_id <> %(vm)s
"""


def hosts(conn: psycopg.Connection, vm_id: int, *, cluster_id: int | None = None,
          names: list[str] | None = None) -> list[PlacementHost]:
    """The hosts of a cluster, or those named (in any cluster), with the VMs recorded on them."""
    where = "h.cluster_id = %(cluster)s" if names is None else "h.name = ANY(%(names)s)"
    with conn.cursor(row_factory=class_row(PlacementHost)) as cur:
        return cur.execute(
            f"""WITH placed AS ({_ON_HOSTS})
                SELECT h.id, h.name, c.name AS cluster, h.status, h.status_reason, h.maintenance, h.memory_total_mib,
                       coalesce(sum(v.memory_mib), 0)::bigint AS vms_memory_mib, count(v.id)::int AS vm_count
                  FROM hosts h JOIN clusters c ON c.id = h.cluster_id
                  LEFT JOIN placed p ON p.host_id = h.id LEFT JOIN vms v ON v.id = p.vm_id
                 WHERE {where}
                 GROUP BY h.id, c.name ORDER BY h.name""",
            {"vm": vm_id, "cluster": cluster_id, "names": names}).fetchall()


def direct_uses(conn: psycopg.Connection, vm_id: int, host_ids: list[int]) -> list[DirectUseRow]:
    """The direct vNICs of the other VMs on those hosts."""
    rows = conn.execute(
        f"""WITH placed AS ({_ON_HOSTS})
            SELECT p.host_id, v.name, n.direct_nic, coalesce(n.direct_mode, 'vepa')
              FROM placed p JOIN vms v ON v.id = p.vm_id JOIN vnics n ON n.vm_id = v.id
             WHERE n.kind = 'direct' AND n.direct_nic IS NOT NULL AND p.host_id = ANY(%(hosts)s)
             ORDER BY p.host_id, v.name, n.position""", {"vm": vm_id, "hosts": host_ids}).fetchall()
    return [DirectUseRow(*r) for r in rows]


def attachments(conn: psycopg.Connection, host_ids: list[int], networks: list[str]) -> list[HostAttachmentRow]:
    """The hosts' recorded attachments of those networks, with each network's definition."""
    if not host_ids or not networks:
        return []
    rows = conn.execute(
        """SELECT a.host_id, n.id, n.name, d.name, n.vlan, n.mtu, n.vm_network, n.description,
                  a.nic, a.ipv4_method, host(a.ipv4_address), a.ipv4_prefixlen, host(a.ipv4_gateway), a.default_route
             FROM host_network_attachments a JOIN networks n ON n.id = a.network_id
             JOIN datacenters d ON d.id = n.datacenter_id
            WHERE a.host_id = ANY(%s) AND n.name = ANY(%s)
            ORDER BY a.host_id, n.name""", (host_ids, networks)).fetchall()
    return [HostAttachmentRow(r[0], NetworkRecord(*r[1:8]), AttachmentRecord(r[2], *r[8:])) for r in rows]
