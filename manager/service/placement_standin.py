"""STAND-IN for B's manager/service/placement.py (issue 16), so migration and maintenance run before it lands.

DELETE THIS FILE when placement.py is merged: manager/app.py builds the real `Placement`
and hands it to MigrationService instead (one line), and MaintenanceService's
`set_maintenance` comes from the store B adds. Only the names and shapes the migration
code calls are here, with the least behaviour that keeps them honest: a destination
must be in the VM's cluster, up and in service; the least loaded such host is chosen.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet.errors import FailedPrecondition, NotFound

from ..store import hosts as host_store
from ..store import vms as vm_store


@dataclass(frozen=True)
class HostVerdict:
    host: str
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0
    free_memory_mib: int | None = None     # None: not known
    vm_count: int = 0


@dataclass(frozen=True)
class Explanation:
    vm: str
    chosen: str
    hosts: list[HostVerdict]               # accepted first, best first


class Placement:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def explain(self, vm_name: str, purpose: str = "start", *, exclude: frozenset[str] = frozenset()) -> Explanation:
        with self._pool.connection() as conn:
            vm = vm_store.get_vm(conn, vm_name)
            rows = conn.execute(
                """SELECT h.name, c.name, h.status, h.status_reason, h.maintenance,
                          (SELECT count(*) FROM vms v WHERE v.host_id = h.id)
                     FROM hosts h JOIN clusters c ON c.id = h.cluster_id ORDER BY h.name""").fetchall()
        verdicts = []
        for name, cluster, status, reason, maintenance, count in rows:
            if name in exclude:
                continue
            reasons = _reasons(vm, name, cluster, status, reason, maintenance, purpose)
            verdicts.append(HostVerdict(name, not reasons, reasons, -float(count), None, count))
        verdicts.sort(key=lambda v: (not v.accepted, -v.score, v.host))
        chosen = verdicts[0].host if verdicts and verdicts[0].accepted else ""
        return Explanation(vm_name, chosen, verdicts)

    def choose(self, vm_name: str, purpose: str = "start", *, exclude: frozenset[str] = frozenset()) -> str:
        e = self.explain(vm_name, purpose, exclude=exclude)
        if not e.chosen:
            listed = "; ".join(f"{v.host}: {', '.join(v.reasons)}" for v in e.hosts) or "there is no other host"
            raise FailedPrecondition(f"no host can take VM {vm_name}: {listed}")
        return e.chosen

    def check(self, vm_name: str, host: str, purpose: str = "migrate") -> list[str]:
        with self._pool.connection() as conn:
            vm = vm_store.get_vm(conn, vm_name)
            h = host_store.get_host(conn, host)
            maintenance = _maintenance(conn, host)
        return _reasons(vm, h.name, h.cluster, h.status, h.status_reason, maintenance, purpose)

    def migration_address(self, host: str) -> str:
        with self._pool.connection() as conn:
            return host_store.get_host(conn, host).address


def _maintenance(conn: psycopg.Connection, host: str) -> str:
    row = conn.execute("SELECT maintenance FROM hosts WHERE name = %s", (host,)).fetchone()
    if row is None:
        raise NotFound(f"host {host!r} does not exist")
    return row[0]


def _reasons(vm: vm_store.VmRecord, host: str, cluster: str, status: str, reason: str, maintenance: str,
             purpose: str) -> list[str]:
    out = []
    if cluster != vm.cluster:
        out.append(f"host {host} is in cluster {cluster}, not in the VM's cluster {vm.cluster}")
    if status != "up":
        out.append(f"host {host} is {status}" + (f": {reason}" if reason else ""))
    elif reason:
        out.append(f"host {host} is non-operational: {reason}")
    if maintenance:
        out.append(f"host {host} is in maintenance" if maintenance == "maintenance"
                   else f"host {host} is preparing for maintenance")
    if purpose == "migrate" and host == vm.host:
        out.append(f"VM {vm.name} runs on host {host} already")
    return out


def set_maintenance(conn: psycopg.Connection, host: str, state: str) -> None:
    """STAND-IN for B's store `set_maintenance`."""
    if conn.execute("UPDATE hosts SET maintenance = %s WHERE name = %s", (state, host)).rowcount != 1:
        raise NotFound(f"host {host!r} does not exist")


def maintenance_of(conn: psycopg.Connection, host: str) -> str:
    """STAND-IN: the host's maintenance state ('' in service)."""
    return _maintenance(conn, host)
