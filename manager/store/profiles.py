"""vNIC profile rows ⇄ `VnicProfile`, the vNICs that use them, and the setting the database's trigger reads.

The database keeps the invariants (db/013_vnic_profiles.sql): every network has its
default profile (a trigger makes it), names are unique per datacenter, a vNIC's
profile belongs to the vNIC's network (a composite foreign key), QoS values are in
range. Here are the named queries.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import psycopg
from psycopg.types.json import Jsonb

from virtfleet.errors import AlreadyExists, NotFound

from ..domain.vnicprofile import FilterParameter, ProfileSettings, QosLimit, VnicProfile


class ProfileRef(NamedTuple):
    """A profile as a vNIC needs it: its id, its network, the generation a VM is given."""

    id: int
    network: str
    generation: int


class OutOfSync(NamedTuple):
    """A running VM's vNIC given an older generation of its profile than the profile has now."""

    vm: str
    nic: str
    host: str
    profile: str
    applied: int | None      # None: started before profiles existed
    current: int


_COLUMNS = """p.id, p.name, d.name, n.name, p.is_default, p.generation,
              p.inbound_average, p.inbound_peak, p.inbound_burst, p.outbound_average, p.outbound_peak,
              p.outbound_burst, p.filter_name, p.filter_parameters, p.port_mirroring, p.isolated, p.mtu_to_guest"""
_FROM = """FROM vnic_profiles p JOIN datacenters d ON d.id = p.datacenter_id JOIN networks n ON n.id = p.network_id"""
_SELECT = f"SELECT {_COLUMNS} {_FROM}"


def _limit(average: int | None, peak: int | None, burst: int | None) -> QosLimit | None:
    return QosLimit(average, peak, burst) if average is not None else None


def settings_from_row(row: Sequence[Any]) -> ProfileSettings:
    """The 11 settings columns, in _COLUMNS' order from inbound_average on."""
    ia, ip, ib, oa, op, ob, fname, fparams, mirroring, isolated, mtu = row
    return ProfileSettings(_limit(ia, ip, ib), _limit(oa, op, ob), fname,
                           tuple(FilterParameter(p["name"], p["value"]) for p in fparams or []),
                           mirroring, isolated, mtu)


def _profile(row: Sequence[Any]) -> VnicProfile:
    pid, name, dc, network, is_default, generation, *settings = row
    return VnicProfile(name, dc, network, settings_from_row(settings), is_default, generation, pid)


def _settings_values(s: ProfileSettings) -> tuple:
    def limit(q: QosLimit | None) -> tuple:
        return (q.average, q.peak, q.burst) if q else (None, None, None)
    return (*limit(s.inbound), *limit(s.outbound), s.filter_name,
            Jsonb([{"name": p.name, "value": p.value} for p in s.filter_parameters]),
            s.port_mirroring, s.isolated, s.mtu_to_guest)


# -- the setting ----------------------------------------------------------------------------------


def set_anti_spoofing(conn: psycopg.Connection, on: bool) -> None:
    """The manager's `mac_anti_spoofing`, for the default profiles of networks made from now on."""
    conn.execute("UPDATE vnic_profile_settings SET mac_anti_spoofing = %s WHERE mac_anti_spoofing <> %s", (on, on))


# -- profiles -------------------------------------------------------------------------------------


def insert_profile(conn: psycopg.Connection, *, name: str, datacenter_id: int, network_id: int,
                   settings: ProfileSettings) -> None:
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO vnic_profiles (datacenter_id, network_id, name, inbound_average, inbound_peak,
                       inbound_burst, outbound_average, outbound_peak, outbound_burst, filter_name,
                       filter_parameters, port_mirroring, isolated, mtu_to_guest)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (datacenter_id, network_id, name, *_settings_values(settings)))
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"a vNIC profile {name!r} already exists in the datacenter (a network's own profile "
                            "has the network's name)") from None


def get_profile(conn: psycopg.Connection, name: str, datacenter: str, *, lock: bool = False) -> VnicProfile:
    row = conn.execute(_SELECT + " WHERE p.name = %s AND d.name = %s" + (" FOR UPDATE OF p" if lock else ""),
                       (name, datacenter)).fetchone()
    if row is None:
        raise NotFound(f"vNIC profile {name!r} does not exist in datacenter {datacenter}")
    return _profile(row)


def list_profiles(conn: psycopg.Connection, datacenter: str = "", network: str = "") -> list[VnicProfile]:
    rows = conn.execute(_SELECT + """ WHERE (%(dc)s = '' OR d.name = %(dc)s) AND (%(net)s = '' OR n.name = %(net)s)
                                      ORDER BY d.name, n.name, NOT p.is_default, p.name""",
                        {"dc": datacenter, "net": network})
    return [_profile(r) for r in rows]


def update_settings(conn: psycopg.Connection, profile_id: int, settings: ProfileSettings) -> None:
    """Replaces the settings and bumps the generation: running vNICs given the old one are out of sync."""
    conn.execute(
        """UPDATE vnic_profiles SET inbound_average = %s, inbound_peak = %s, inbound_burst = %s,
                  outbound_average = %s, outbound_peak = %s, outbound_burst = %s, filter_name = %s,
                  filter_parameters = %s, port_mirroring = %s, isolated = %s, mtu_to_guest = %s,
                  generation = generation + 1, updated_at = now()
            WHERE id = %s""", (*_settings_values(settings), profile_id))


def delete_profile(conn: psycopg.Connection, profile_id: int) -> None:
    conn.execute("DELETE FROM vnic_profiles WHERE id = %s", (profile_id,))


def users(conn: psycopg.Connection, profile_id: int) -> list[str]:
    """VM/nic of every vNIC that uses the profile."""
    return [f"{r[0]}/{r[1]}" for r in conn.execute(
        """SELECT v.name, n.name FROM vnics n JOIN vms v ON v.id = n.vm_id WHERE n.profile_id = %s
            ORDER BY v.name, n.name""", (profile_id,))]


def template_users(conn: psycopg.Connection, profile: VnicProfile) -> list[str]:
    """Templates and snapshots of the datacenter whose vNICs name the profile (by name: they are portable)."""
    return [r[0] for r in conn.execute(
        """SELECT 'template ' || t.name FROM template_nics n JOIN templates t ON t.id = n.template_id
             JOIN datacenters d ON d.id = t.datacenter_id WHERE n.profile = %(p)s AND d.name = %(dc)s
           UNION ALL
           SELECT 'snapshot ' || s.name FROM snapshot_nics n JOIN snapshots s ON s.id = n.snapshot_id
             JOIN vms v ON v.id = s.vm_id JOIN clusters c ON c.id = v.cluster_id
             JOIN datacenters d ON d.id = c.datacenter_id WHERE n.profile = %(p)s AND d.name = %(dc)s
           ORDER BY 1""", {"p": profile.name, "dc": profile.datacenter})]


def network_of_datacenter(conn: psycopg.Connection, network: str, datacenter: str) -> tuple[int, int, bool]:
    """(datacenter id, network id, vm_network) of a network by name."""
    row = conn.execute(
        """SELECT d.id, n.id, n.vm_network FROM networks n JOIN datacenters d ON d.id = n.datacenter_id
            WHERE n.name = %s AND d.name = %s""", (network, datacenter)).fetchone()
    if row is None:
        raise NotFound(f"network {network!r} does not exist in datacenter {datacenter}")
    return row


# -- what vNICs need ------------------------------------------------------------------------------


def profile_refs(conn: psycopg.Connection, datacenter: str) -> dict[str, ProfileRef]:
    """The datacenter's profiles by name (a vNIC being added or made names one)."""
    rows = conn.execute(
        """SELECT p.name, p.id, n.name, p.generation FROM vnic_profiles p JOIN networks n ON n.id = p.network_id
             JOIN datacenters d ON d.id = p.datacenter_id WHERE d.name = %s""", (datacenter,))
    return {r[0]: ProfileRef(r[1], r[2], r[3]) for r in rows}


def vm_profiles(conn: psycopg.Connection, vm_id: int) -> dict[str, VnicProfile]:
    """The profile of each of a VM's vNICs that has one, by vNIC name (what a start or sync sends)."""
    rows = conn.execute(f"SELECT v.name, {_COLUMNS} {_FROM} JOIN vnics v ON v.profile_id = p.id WHERE v.vm_id = %s",
                        (vm_id,))
    return {r[0]: _profile(r[1:]) for r in rows}


def out_of_sync(conn: psycopg.Connection) -> list[OutOfSync]:
    """Every running vNIC whose profile changed since it was applied (the audit's `vnic-profile`)."""
    rows = conn.execute(
        """SELECT v.name, n.name, h.name, p.name, n.applied_profile_generation, p.generation
             FROM vnics n JOIN vms v ON v.id = n.vm_id JOIN hosts h ON h.id = v.host_id
             JOIN vnic_profiles p ON p.id = n.profile_id
            WHERE v.state = 'up' AND coalesce(n.applied_profile_generation, 0) < p.generation
            ORDER BY v.name, n.name""")
    return [OutOfSync(*r) for r in rows]
