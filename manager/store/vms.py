"""Named queries on VMs: the rows, where they run, and the claim that makes one runtime change at a time.

A runtime change (start, stop, hot-plug) calls an agent, and no transaction or row
lock is held across that call. Instead the change claims the VM in a short
transaction (`claim`), calls the agent with nothing open, and records the result in
another short transaction that checks the claim is still its own (`finish_start`,
`finish_stop`, `release_claim`). Another change meanwhile sees the VM busy and is
refused; the row lock of each short transaction makes the check-and-claim atomic.
A claim older than CLAIM_LIFETIME (its manager died) no longer counts.

Bulk paths (many VMs from one template) insert with one statement per table
per batch (`unnest`, `COPY`), so a batch costs a few round trips whatever its size.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import psycopg

from virtfleet.errors import AlreadyExists, InvalidArgument, NotFound

from ..domain.boot import BootSource, DomainType
from . import boot as boot_columns

CLAIM_LIFETIME = "10 minutes"   # longer than any agent call of a runtime change (DefineVm + StartVm, a guest shutdown)


class HostRef(NamedTuple):
    """A host as a runtime change needs it: to record it (id) and to call its agent (name, endpoint)."""

    id: int
    name: str
    endpoint: str


@dataclass(frozen=True)
class VmRecord:
    id: int
    name: str
    cluster_id: int
    cluster: str
    datacenter: str
    host_id: int | None
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
    busy: bool                      # a runtime change (start, stop, hot-plug, migration) holds a live claim
    migrating_to: str | None        # a migration runs (store/vm_migrations.py): its destination host
    boot: BootSource                # how it boots (empty: diskless)
    domain_type: DomainType

    @property
    def placement(self) -> HostRef | None:
        """The host it runs on, while it runs."""
        if self.state == "up" and self.host_id is not None and self.host and self.host_endpoint:
            return HostRef(self.host_id, self.host, self.host_endpoint)
        return None


class VmCluster(NamedTuple):
    id: int
    datacenter: str


class HostLoad(NamedTuple):
    """A host that is up, with the number of VMs running on it."""

    host: HostRef
    running: int


_SELECT_VM = f"""
    SELECT v.id, v.name, v.cluster_id, c.name AS cluster, d.name AS datacenter, v.host_id, h.name AS host,
           h.endpoint AS host_endpoint, v.state, v.memory_mib, v.vcpus, v.source_kind, v.source_name,
           v.source_template_id, v.source_snapshot_id, v.nic_rule, v.first_boot_at, v.created_at,
           coalesce(v.claimed_at > now() - interval '{CLAIM_LIFETIME}', false) OR m.id IS NOT NULL AS busy,
           CASE WHEN m.id IS NOT NULL THEN coalesce(mh.name, '(a deleted host)') END AS migrating_to,
           {boot_columns.select("v")}
      FROM vms v JOIN clusters c ON c.id = v.cluster_id JOIN datacenters d ON d.id = c.datacenter_id
      LEFT JOIN hosts h ON h.id = v.host_id
      LEFT JOIN vm_migrations m ON m.vm_id = v.id AND m.state = 'running'
      LEFT JOIN hosts mh ON mh.id = m.dest_host_id
"""


_VM_ROW = boot_columns.record_row(VmRecord)


def get_vm(conn: psycopg.Connection, name: str, *, lock: bool = False) -> VmRecord:
    """`lock` holds the VM's row until the (short) transaction ends, so two changes to one VM queue up."""
    query = _SELECT_VM + " WHERE v.name = %s" + (" FOR UPDATE OF v" if lock else "")
    with conn.cursor(row_factory=_VM_ROW) as cur:
        row = cur.execute(query, (name,)).fetchone()
    if row is None:
        raise NotFound(f"VM {name!r} does not exist")
    return row


def list_vms(conn: psycopg.Connection) -> list[VmRecord]:
    with conn.cursor(row_factory=_VM_ROW) as cur:
        return cur.execute(_SELECT_VM + " ORDER BY v.name").fetchall()


def existing_vm_names(conn: psycopg.Connection, names: Sequence[str]) -> list[str]:
    rows = conn.execute("SELECT name FROM vms WHERE name = ANY(%s) ORDER BY name", (list(names),)).fetchall()
    return [r[0] for r in rows]


def vm_sources(conn: psycopg.Connection, names: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """(name, source kind, source name) of those VMs."""
    rows = conn.execute("SELECT name, source_kind, source_name FROM vms WHERE name = ANY(%s) ORDER BY name",
                        (list(names),)).fetchall()
    return [tuple(r) for r in rows]


def down_vm_names(conn: psycopg.Connection, names: Sequence[str]) -> list[str]:
    rows = conn.execute("SELECT name FROM vms WHERE name = ANY(%s) AND state = 'down'", (list(names),)).fetchall()
    return [r[0] for r in rows]


def insert_vms(conn: psycopg.Connection, *, cluster_id: int, names: Sequence[str], memory_mib: int, vcpus: int,
               source_kind: str | None, source_name: str | None, template_id: int | None,
               snapshot_id: int | None, nic_rule: str | None, boot: BootSource,
               domain_type: DomainType) -> dict[str, int]:
    """Insert VMs in one statement; name → id."""
    try:
        with conn.transaction():
            rows = conn.execute(
                f"""INSERT INTO vms (name, cluster_id, memory_mib, vcpus, source_kind, source_name,
                                     source_template_id, source_snapshot_id, nic_rule, {", ".join(boot_columns.COLUMNS)})
                    SELECT n, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM unnest(%s::text[]) AS n
                    RETURNING name, id""",
                (cluster_id, memory_mib, vcpus, source_kind, source_name, template_id, snapshot_id, nic_rule,
                 *boot_columns.values(boot, domain_type), list(names)),
            ).fetchall()
    except psycopg.errors.UniqueViolation:
        taken = existing_vm_names(conn, names)
        raise AlreadyExists(f"VM {taken[0] if taken else names[0]!r} already exists") from None
    except psycopg.errors.CheckViolation as exc:
        raise InvalidArgument(_violated_field(exc), f"refused by the database ({exc.diag.constraint_name})") from None
    return dict(rows)


def _violated_field(exc: psycopg.errors.CheckViolation) -> str:
    """The request field a CHECK names (the service checks first: this is the database's backstop)."""
    constraint = exc.diag.constraint_name or ""
    if "boot" in constraint or "host_path" in constraint or "cmdline" in constraint:
        return "boot"
    return "domain_type" if "domain_type" in constraint else "vm.name"


def set_resources(conn: psycopg.Connection, vm_id: int, memory_mib: int, vcpus: int) -> None:
    conn.execute("UPDATE vms SET memory_mib = %s, vcpus = %s WHERE id = %s", (memory_mib, vcpus, vm_id))


def set_boot(conn: psycopg.Connection, vm_id: int, boot: BootSource, domain_type: DomainType) -> None:
    """How the VM boots from its next start on (a snapshot's restore brings its VM's back)."""
    conn.execute(f"UPDATE vms SET ({', '.join(boot_columns.COLUMNS)}) = (%s, %s, %s, %s, %s, %s) WHERE id = %s",
                 (*boot_columns.values(boot, domain_type), vm_id))


def delete_vm(conn: psycopg.Connection, vm_id: int) -> None:
    conn.execute("DELETE FROM vms WHERE id = %s", (vm_id,))


# -- one runtime change at a time --------------------------------------------------------------


def claim(conn: psycopg.Connection, vm_id: int) -> uuid.UUID:
    """Mark the VM busy with a runtime change; the caller has checked, under the row lock, that it was not."""
    token = uuid.uuid4()
    conn.execute("UPDATE vms SET claim = %s, claimed_at = now() WHERE id = %s", (token, vm_id))
    return token


def release_claim(conn: psycopg.Connection, vm_id: int, token: uuid.UUID) -> bool:
    """End a claim without recording a change; False when it was no longer ours (expired and taken, VM gone)."""
    return conn.execute("UPDATE vms SET claim = NULL, claimed_at = NULL WHERE id = %s AND claim = %s",
                        (vm_id, token)).rowcount == 1


def finish_start(conn: psycopg.Connection, vm_id: int, token: uuid.UUID, host_id: int) -> bool:
    """Up on the host (stamping the first boot), if the claim is still ours and the VM still down."""
    return conn.execute(
        """UPDATE vms SET host_id = %s, state = 'up', first_boot_at = coalesce(first_boot_at, now()),
                          claim = NULL, claimed_at = NULL
            WHERE id = %s AND claim = %s AND state = 'down'""", (host_id, vm_id, token)).rowcount == 1


def finish_stop(conn: psycopg.Connection, vm_id: int, host_id: int) -> bool:
    """Down (no host devices), if it is still recorded up on the host it was stopped on; any claim ends."""
    done = conn.execute(
        """UPDATE vms SET host_id = NULL, state = 'down', claim = NULL, claimed_at = NULL
            WHERE id = %s AND host_id = %s""", (vm_id, host_id)).rowcount == 1
    if done:
        conn.execute("UPDATE vnics SET host_device = NULL WHERE vm_id = %s", (vm_id,))
    return done


# -- placement ----------------------------------------------------------------------------------


def host_loads(conn: psycopg.Connection, cluster_id: int) -> list[HostLoad]:
    """The cluster's hosts that are up, least loaded first."""
    rows = conn.execute(
        """SELECT h.id, h.name, h.endpoint, count(v.id) FROM hosts h LEFT JOIN vms v ON v.host_id = h.id
            WHERE h.cluster_id = %s AND h.status = 'up'
            GROUP BY h.id ORDER BY count(v.id), h.name""", (cluster_id,)).fetchall()
    return [HostLoad(HostRef(*r[:3]), r[3]) for r in rows]


def cluster(conn: psycopg.Connection, name: str) -> VmCluster:
    row = conn.execute("""SELECT c.id, d.name FROM clusters c JOIN datacenters d ON d.id = c.datacenter_id
                           WHERE c.name = %s ORDER BY c.id LIMIT 1""", (name,)).fetchone()
    if row is None:
        raise NotFound(f"cluster {name!r} does not exist")
    return VmCluster(*row)
