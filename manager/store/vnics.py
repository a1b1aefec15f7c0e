"""vNIC rows ⇄ `Vnic`: the one mapping to the columns of `vnics`, `template_nics` and `snapshot_nics`.

The three tables share their attachment columns (db/004_vms.sql); a VM's vNIC names
its logical network by id and carries a MAC and a host device, a template's names
the network (portable between datacenters) and has no MAC, a snapshot's names it
and keeps the MAC. The virtualport is stored as JSON in the form below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import psycopg
from psycopg.types.json import Jsonb

from ..domain.vmorder import SourceKind
from ..domain.vnic import DirectMode, PciAddress, Qbg, Qbh, Virtualport, Vnic, VnicKind, VnicRuntime

# Written by every table, in this order.
_ATTACHMENT = ("name", "position", "kind", "virtual_network", "direct_nic", "direct_mode", "virtualport", "model")


@dataclass(frozen=True)
class _SourceTable:
    table: str
    owner: str
    mac: bool


_SOURCE_TABLES = {SourceKind.TEMPLATE: _SourceTable("template_nics", "template_id", mac=False),
                  SourceKind.SNAPSHOT: _SourceTable("snapshot_nics", "snapshot_id", mac=True)}


class PlacedVnic(NamedTuple):
    """A VM's vNIC to insert: the VM, the vNIC, its logical network's id (None: it names none) and its profile's
    (None: the network's default, filled in by the database)."""

    vm_id: int
    vnic: Vnic
    network_id: int | None
    profile_id: int | None = None


class NetworkRef(NamedTuple):
    """A logical network as a vNIC needs it: to reference it, to know it has a bridge, to carry its VLAN."""

    id: int
    vm_network: bool
    vlan: int | None
    mtu: int = 1500


# -- the mapping ----------------------------------------------------------------------------------


def virtualport_json(port: Virtualport | None) -> dict[str, Any] | None:
    if isinstance(port, Qbg):
        return {"type": "802.1Qbg", "managerid": port.managerid, "typeid": port.typeid,
                "typeidversion": port.typeidversion, "instanceid": port.instanceid}
    if isinstance(port, Qbh):
        return {"type": "802.1Qbh", "profileid": port.profileid}
    return None


def virtualport_from_json(value: dict[str, Any] | None) -> Virtualport | None:
    if not value:
        return None
    if value.get("type") == "802.1Qbg":
        return Qbg(value.get("managerid", 0), value.get("typeid", 0), value.get("typeidversion", 0),
                   value.get("instanceid", ""))
    if value.get("type") == "802.1Qbh":
        return Qbh(value.get("profileid", ""))
    raise ValueError(f"stored virtualport of unknown type: {value!r}")


def _attachment_values(v: Vnic) -> tuple:
    port = virtualport_json(v.virtualport)
    return (v.name, v.position, v.kind.value, v.virtual_network, v.direct_nic,
            v.direct_mode.value if v.direct_mode else None, Jsonb(port) if port is not None else None, v.model)


_SELECT = """SELECT {prefix}n.name, n.position, n.kind, {network} AS network, n.virtual_network, n.direct_nic,
                    n.direct_mode, n.virtualport, n.model, {mac} AS mac, n.pci_address, {host_device} AS host_device,
                    {unplugging} AS unplugging, {profile} AS profile, {link_down} AS link_down,
                    {out_of_sync} AS out_of_sync
               FROM {table} n {join}"""


def _vnic(row: Sequence[Any]) -> Vnic:
    """A row in _SELECT's column order (after any prefix columns)."""
    (name, position, kind, network, virtual_network, direct_nic, mode, port, model, mac, pci, device, unplugging,
     profile, link_down, out_of_sync) = row
    return Vnic(name=name, kind=VnicKind(kind), network=network, virtual_network=virtual_network,
                direct_nic=direct_nic, direct_mode=DirectMode(mode) if mode else None,
                virtualport=virtualport_from_json(port), model=model, mac=mac,
                pci=PciAddress.parse(pci) if pci else None, position=position, host_device=device,
                unplugging=unplugging, profile=profile, link_down=link_down, profile_out_of_sync=out_of_sync)


# -- a VM's vNICs ---------------------------------------------------------------------------------

# Out of sync: the running VM was given an older generation of the profile (a stopped one gets it at start).
_VM_SELECT = _SELECT.format(network="net.name", mac="n.mac::text", host_device="n.host_device", table="vnics",
                            unplugging="n.unplugging", profile="p.name", link_down="n.link_down",
                            out_of_sync="(vm.state = 'up' AND p.id IS NOT NULL "
                                        "AND coalesce(n.applied_profile_generation, 0) < p.generation)",
                            join="JOIN vms vm ON vm.id = n.vm_id LEFT JOIN networks net ON net.id = n.network_id "
                                 "LEFT JOIN vnic_profiles p ON p.id = n.profile_id",
                            prefix="{prefix}")


def vm_vnics(conn: psycopg.Connection, vm_id: int) -> list[Vnic]:
    rows = conn.execute(_VM_SELECT.format(prefix="") + " WHERE n.vm_id = %s ORDER BY n.position", (vm_id,))
    return [_vnic(r) for r in rows]


def vnics_by_vm(conn: psycopg.Connection) -> dict[int, list[Vnic]]:
    """Every VM's vNICs, by VM id, in one query (listing many VMs)."""
    found: dict[int, list[Vnic]] = {}
    for row in conn.execute(_VM_SELECT.format(prefix="n.vm_id, ") + " ORDER BY n.vm_id, n.position"):
        found.setdefault(row[0], []).append(_vnic(row[1:]))
    return found


def insert_vm_vnics(conn: psycopg.Connection, rows: Iterable[PlacedVnic]) -> None:
    """In one COPY, whatever the count (a bulk batch holds thousands)."""
    cols = ("vm_id", *_ATTACHMENT, "network_id", "mac", "pci_address", "host_device", "profile_id", "link_down")
    with conn.cursor() as cur:
        with cur.copy(f"COPY vnics ({', '.join(cols)}) FROM STDIN") as copy:
            for vm_id, v, network_id, profile_id in rows:
                copy.write_row((vm_id, *_attachment_values(v), network_id, v.mac, _pci(v.pci), v.host_device,
                                profile_id, v.link_down))


def store_runtime(conn: psycopg.Connection, vm_id: int, runtime: Sequence[VnicRuntime]) -> None:
    """What the host read back: the PCI address libvirt gave (kept when it reports none), the host device."""
    if not runtime:
        return
    conn.execute(
        """UPDATE vnics n SET pci_address = coalesce(r.pci, n.pci_address), host_device = r.dev
             FROM unnest(%s::text[], %s::text[], %s::text[]) AS r(name, pci, dev)
            WHERE n.vm_id = %s AND n.name = r.name""",
        ([r.name for r in runtime], [_pci(r.pci) for r in runtime], [r.host_device for r in runtime], vm_id))


def vm_macs(conn: psycopg.Connection, vm_id: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT mac::text FROM vnics WHERE vm_id = %s ORDER BY position", (vm_id,))]


def next_position(conn: psycopg.Connection, vm_id: int) -> int:
    return conn.execute("SELECT coalesce(max(position) + 1, 0) FROM vnics WHERE vm_id = %s", (vm_id,)).fetchone()[0]


def delete_vnic(conn: psycopg.Connection, vm_id: int, name: str) -> str | None:
    """Remove a vNIC; its MAC (for the pool), or None when the VM has no such vNIC."""
    row = conn.execute("DELETE FROM vnics WHERE vm_id = %s AND name = %s RETURNING mac::text", (vm_id, name)).fetchone()
    return row[0] if row else None


def mark_unplugging(conn: psycopg.Connection, vm_id: int, name: str) -> None:
    """The guest still holds the device after the unplug: keep the vNIC (and its MAC) until it is gone."""
    conn.execute("UPDATE vnics SET unplugging = true WHERE vm_id = %s AND name = %s", (vm_id, name))


def delete_unplugging(conn: psycopg.Connection, vm_id: int) -> list[str]:
    """Remove the vNICs that were being unplugged (their VM stopped); their MACs, for the pool."""
    rows = conn.execute("DELETE FROM vnics WHERE vm_id = %s AND unplugging RETURNING mac::text", (vm_id,))
    return [r[0] for r in rows]


def set_link_down(conn: psycopg.Connection, vm_id: int, name: str, down: bool) -> None:
    conn.execute("UPDATE vnics SET link_down = %s WHERE vm_id = %s AND name = %s", (down, vm_id, name))


def record_applied(conn: psycopg.Connection, vm_id: int, generations: dict[str, int]) -> None:
    """The profile generation each named vNIC of the running VM was given (at start, hot-plug or sync)."""
    if generations:
        conn.execute(
            """UPDATE vnics n SET applied_profile_generation = g.generation
                 FROM unnest(%s::text[], %s::bigint[]) AS g(name, generation)
                WHERE n.vm_id = %s AND n.name = g.name""", (list(generations), list(generations.values()), vm_id))


def pci_holder(conn: psycopg.Connection, vm_id: int, pci: PciAddress) -> str | None:
    """The name of the VM's vNIC at `pci`, if one is."""
    row = conn.execute("SELECT name FROM vnics WHERE vm_id = %s AND pci_address = %s", (vm_id, str(pci))).fetchone()
    return row[0] if row else None


def delete_vm_vnics(conn: psycopg.Connection, vm_id: int) -> None:
    conn.execute("DELETE FROM vnics WHERE vm_id = %s", (vm_id,))


def network_refs(conn: psycopg.Connection, datacenter: str, *, lock: bool = False) -> dict[str, NetworkRef]:
    """The datacenter's logical networks by name; `lock` keeps them from deletion to the end of the transaction
    (for a template, whose vNICs name a network without a foreign key)."""
    rows = conn.execute(
        """SELECT n.name, n.id, n.vm_network, n.vlan, n.mtu FROM networks n JOIN datacenters d ON d.id = n.datacenter_id
            WHERE d.name = %s""" + (" FOR SHARE OF n" if lock else ""), (datacenter,)).fetchall()
    return {r[0]: NetworkRef(r[1], r[2], r[3], r[4]) for r in rows}


# -- a template's or snapshot's vNICs: one query, one COPY --------------------------------------


def source_vnics(conn: psycopg.Connection, kind: SourceKind, owner_id: int) -> list[Vnic]:
    t = _SOURCE_TABLES[kind]
    query = _SELECT.format(prefix="", network="n.network", mac="n.mac::text" if t.mac else "NULL::text",
                           host_device="NULL::text", unplugging="false", profile="n.profile", link_down="false",
                           out_of_sync="false", table=t.table, join="")
    return [_vnic(r) for r in conn.execute(query + f" WHERE n.{t.owner} = %s ORDER BY n.position", (owner_id,))]


def insert_source_vnics(conn: psycopg.Connection, kind: SourceKind, owner_id: int, vnics: Sequence[Vnic]) -> None:
    """A template keeps no MAC; a snapshot keeps each vNIC's."""
    t = _SOURCE_TABLES[kind]
    cols = (t.owner, *_ATTACHMENT, "network", "profile", "pci_address", *(("mac",) if t.mac else ()))
    with conn.cursor() as cur:
        with cur.copy(f"COPY {t.table} ({', '.join(cols)}) FROM STDIN") as copy:
            for v in vnics:
                row = (owner_id, *_attachment_values(v), v.network, v.profile, _pci(v.pci))
                copy.write_row((*row, v.mac) if t.mac else row)


def _pci(pci: PciAddress | None) -> str | None:
    return str(pci) if pci is not None else None
