"""Named queries on guest names: what a VM's guest last called each vNIC, and its source's guest's names.

Kept apart from the vNIC row mapping (store/vnics.py): a guest name is an
observation (the guest agent's, matched by MAC), not part of how a vNIC is
configured, and it is written on its own when a running VM is read.
"""
from __future__ import annotations

from typing import Mapping

import psycopg

from ..domain.guestnames import GuestNic
from ..domain.vmorder import SourceKind

_SOURCE = {SourceKind.TEMPLATE: ("template_nics", "template_id"), SourceKind.SNAPSHOT: ("snapshot_nics", "snapshot_id")}


def vm_guest_nics(conn: psycopg.Connection, vm_id: int) -> dict[str, GuestNic]:
    """vNIC name → its last-seen guest name and addresses, for the vNICs whose guest name is known."""
    rows = conn.execute("SELECT name, guest_name, guest_ips FROM vnics WHERE vm_id = %s AND guest_name IS NOT NULL",
                        (vm_id,))
    return {name: GuestNic(guest, tuple(ips)) for name, guest, ips in rows}


def guest_nics_by_vm(conn: psycopg.Connection) -> dict[int, dict[str, GuestNic]]:
    """Every VM's known guest names, by VM id, in one query (listing many VMs)."""
    found: dict[int, dict[str, GuestNic]] = {}
    for vm_id, name, guest, ips in conn.execute(
            "SELECT vm_id, name, guest_name, guest_ips FROM vnics WHERE guest_name IS NOT NULL"):
        found.setdefault(vm_id, {})[name] = GuestNic(guest, tuple(ips))
    return found


def store_seen(conn: psycopg.Connection, vm_id: int, seen: Mapping[str, GuestNic]) -> None:
    """What the guest showed just now: the vNICs in `seen` get their name and addresses, the others (the
    guest showed no NIC with their MAC) lose theirs. vNICs being unplugged keep what they had. Rows
    already so are not written: reading a VM again and again writes nothing."""
    names = list(seen)
    conn.execute(
        """UPDATE vnics n SET guest_name = r.guest_name, guest_ips = r.ips
             FROM (SELECT v.name, s.guest_name, coalesce(s.ips, '{}') AS ips
                     FROM vnics v LEFT JOIN (SELECT unnest(%s::text[]) AS name, unnest(%s::text[]) AS guest_name,
                                                    unnest(%s::text[])::text[] AS ips) s ON s.name = v.name
                    WHERE v.vm_id = %s AND NOT v.unplugging) r
            WHERE n.vm_id = %s AND n.name = r.name
              AND (n.guest_name IS DISTINCT FROM r.guest_name OR n.guest_ips IS DISTINCT FROM r.ips)""",
        (names, [seen[n].name for n in names], [_ips_literal(seen[n].ips) for n in names], vm_id, vm_id))


def _ips_literal(ips: tuple[str, ...]) -> str:
    """A text[] literal (unnest of a 2-D array cannot give rows of arrays of different lengths)."""
    return "{" + ",".join('"' + ip.replace("\\", "\\\\").replace('"', '\\"') + '"' for ip in ips) + "}"


def source_guest_names(conn: psycopg.Connection, kind: SourceKind, owner_id: int) -> dict[str, str]:
    """vNIC name → the guest name the source VM's guest gave it, for those recorded."""
    table, owner = _SOURCE[kind]
    rows = conn.execute(f"SELECT name, guest_name FROM {table} WHERE {owner} = %s AND guest_name IS NOT NULL",
                        (owner_id,))
    return dict(rows.fetchall())


def copy_to_source(conn: psycopg.Connection, kind: SourceKind, owner_id: int, vm_id: int) -> None:
    """A template or snapshot made from a VM keeps the guest names its vNICs had (matched by vNIC name)."""
    table, owner = _SOURCE[kind]
    conn.execute(f"""UPDATE {table} t SET guest_name = n.guest_name FROM vnics n
                      WHERE t.{owner} = %s AND n.vm_id = %s AND n.name = t.name""", (owner_id, vm_id))
