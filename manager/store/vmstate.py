"""Named queries of VM reconciliation: the record as the rules judge it, and the writes that settle a VM.

Reconciliation reads the record, asks the hosts (no transaction open), then
writes under the VM's row lock only if the row is the one it read: `version` is
the row's `xmin`, which every UPDATE of the row changes (a claim, a release, a
start, a stop), so a change that began or ended meanwhile — even one that put
the same values back — makes the write step aside. A running migration is
checked under the lock too (the migration service owns that VM until it ends).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import psycopg

from .vms import CLAIM_LIFETIME


def _seconds(interval: str) -> float:
    count, unit = interval.split()
    return float(count) * {"second": 1, "minute": 60, "hour": 3600}[unit.rstrip("s")]


CLAIM_LIFETIME_S = _seconds(CLAIM_LIFETIME)   # store/vms.py's, in seconds: a claim older than this is dead


class VmStateRow(NamedTuple):
    id: int
    name: str
    cluster_id: int
    state: str
    host_id: int | None
    host: str | None
    claim_age_s: float | None   # None: no claim
    migrating: bool
    version: str                # the row's xmin


class AnswerableHost(NamedTuple):
    """An enrolled host reconciliation may ask what it runs."""

    id: int
    name: str
    endpoint: str
    cluster_id: int


_ROWS = """
    SELECT v.id, v.name, v.cluster_id, v.state, v.host_id, h.name,
           extract(epoch FROM now() - v.claimed_at)::float8,
           EXISTS (SELECT 1 FROM vm_migrations m WHERE m.vm_id = v.id AND m.state = 'running'),
           v.xmin::text
      FROM vms v LEFT JOIN hosts h ON h.id = v.host_id
"""


def rows(conn: psycopg.Connection, names: Sequence[str], host_ids: Sequence[int]) -> list[VmStateRow]:
    """The VMs named like a running domain, and those recorded up on one of `host_ids`."""
    found = conn.execute(_ROWS + " WHERE v.name = ANY(%s) OR v.host_id = ANY(%s) ORDER BY v.name",
                         (list(names), list(host_ids))).fetchall()
    return [VmStateRow(*r) for r in found]


def row(conn: psycopg.Connection, vm_id: int, *, lock: bool = False) -> VmStateRow | None:
    found = conn.execute(_ROWS + " WHERE v.id = %s" + (" FOR UPDATE OF v" if lock else ""), (vm_id,)).fetchone()
    return VmStateRow(*found) if found else None


def answerable_hosts(conn: psycopg.Connection) -> list[AnswerableHost]:
    """Hosts with a certificate to call them with (not pending, not revoked)."""
    found = conn.execute("""SELECT id, name, endpoint, cluster_id FROM hosts
                             WHERE status NOT IN ('pending', 'revoked') ORDER BY name""").fetchall()
    return [AnswerableHost(*r) for r in found]


def vnic_macs(conn: psycopg.Connection, vm_id: int) -> dict[str, str]:
    """vNIC name → MAC (canonical text), to tell the VM's guest from a stranger of the same name."""
    return dict(conn.execute("SELECT name, lower(mac::text) FROM vnics WHERE vm_id = %s", (vm_id,)).fetchall())


def record_up(conn: psycopg.Connection, vm_id: int, host_id: int) -> None:
    """Up on the host (first boot stamped if it was never), any claim ended: what a start records."""
    conn.execute("""UPDATE vms SET host_id = %s, state = 'up', first_boot_at = coalesce(first_boot_at, now()),
                                   claim = NULL, claimed_at = NULL
                     WHERE id = %s""", (host_id, vm_id))
