"""Live migration's decisions, free of I/O: the order checked, libvirt's flags and parameters, its job read.

The I/O is agent.virt.migration; everything here is a function of its inputs, so the
flags a migration runs with and what a job's statistics mean are tested without a
libvirtd.

Why these flags (`flags`): peer to peer (the source's libvirtd connects to the
destination's itself: the agent's process may not reach it, and no second client
connection is kept in the middle), live, the definition persisted on the destination
and undefined here (else the destination's copy is transient and this host keeps a
definition that a later start would run twice). Auto-converge and post-copy only when
asked. The data stream goes to `migrate_uri` (the migration network's address) when
given, else where the destination's libvirtd says (its `migration_host`).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import libvirt

from virtfleet import rules
from virtfleet.errors import InvalidArgument

DEST_SCHEMES = frozenset({"qemu+tls"})     # libvirtd to libvirtd: TLS with the hosts' certificates, nothing else
STREAM_SCHEMES = frozenset({"tcp"})
MAX_DOWNTIME_MS = 60_000                   # beyond a minute it is no longer a live migration
MAX_BANDWIDTH_MIB_S = 1_000_000            # ~1 TiB/s: more than any link; QEMU takes MiB/s in 64 bits anyway
MAX_TIMEOUT_S = 7 * 86_400
POSTCOPY_AFTER_ITERATION = 2               # QEMU counts passes from 1: 2 means the first full pass is done
MIB = 1024 * 1024


@dataclass(frozen=True)
class MigrationOrder:
    """One MigrateVm request, typed (virtfleet.v1.MigrateVmRequest)."""

    name: str
    dest_uri: str
    migrate_uri: str = ""
    max_downtime_ms: int = 0
    bandwidth_mib_s: int = 0
    auto_converge: bool = False
    post_copy: bool = False
    timeout_s: int = 0
    dest_name: str = ""

    @property
    def destination(self) -> str:
        """The destination as messages name it: the manager's host name, else the URI's address."""
        return self.dest_name or urlsplit(self.dest_uri).hostname or self.dest_uri


@dataclass(frozen=True)
class MigrationJob:
    """A VM's migration job as libvirt reports it (virtfleet.v1.MigrationJob); sizes in bytes."""

    active: bool = False
    time_elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    dirty_rate: int = 0               # pages per second
    expected_downtime_ms: int = 0     # a running job: what the switch-over would cost now
    downtime_ms: int = 0              # a completed job: what it cost
    memory_bps: int = 0
    phase: str = ""                   # "precopy" | "postcopy" | "" (no migration job)


def validate(order: MigrationOrder) -> MigrationOrder:
    """Every field of the order within its bounds, the URIs of the kinds this agent speaks; InvalidArgument
    names the field."""
    if not order.name:
        raise InvalidArgument("name", "is required")
    dest = urlsplit(order.dest_uri)
    if dest.scheme not in DEST_SCHEMES or not dest.hostname or dest.path != "/system":
        raise InvalidArgument("dest_uri", f"{order.dest_uri!r} is not a destination libvirtd this agent migrates to "
                              "(qemu+tls://ADDRESS/system)")
    if "pkipath" in dict(parse_qsl(dest.query)):
        raise InvalidArgument("dest_uri", "pkipath is this host's own setting (libvirt_pki_dir); leave it out")
    if order.migrate_uri:
        stream = urlsplit(order.migrate_uri)
        if stream.scheme not in STREAM_SCHEMES or not stream.hostname:
            raise InvalidArgument("migrate_uri", f"{order.migrate_uri!r} is not a migration stream address "
                                  "(tcp://ADDRESS or tcp://ADDRESS:PORT)")
    rules.int_within(order.max_downtime_ms, 0, MAX_DOWNTIME_MS, "max_downtime_ms", "maximum downtime (ms)")
    rules.int_within(order.bandwidth_mib_s, 0, MAX_BANDWIDTH_MIB_S, "bandwidth_mib_s", "bandwidth (MiB/s)")
    rules.int_within(order.timeout_s, 0, MAX_TIMEOUT_S, "timeout_s", "migration timeout (s)")
    return order


def peer_uri(dest_uri: str, pki_dir: str) -> str:
    """The destination URI with this host's libvirt PKI directory: the client certificate the source's
    libvirtd presents there (and the CA it checks the destination's with)."""
    parts = urlsplit(dest_uri)
    query = [*parse_qsl(parts.query), ("pkipath", pki_dir)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


def flags(order: MigrationOrder) -> int:
    found = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
             | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    if order.auto_converge:
        found |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if order.post_copy:
        found |= libvirt.VIR_MIGRATE_POSTCOPY
    return found


def params(order: MigrationOrder) -> dict[str, object]:
    """virDomainMigrateToURI3's typed parameters (the destination URI is its own argument)."""
    found: dict[str, object] = {}
    if order.migrate_uri:
        found[libvirt.VIR_MIGRATE_PARAM_URI] = order.migrate_uri
    if order.bandwidth_mib_s:
        found[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = order.bandwidth_mib_s
    return found


def is_migration(stats: dict) -> bool:
    """A running job of the domain that is its outgoing migration (not a save, dump or snapshot)."""
    running = stats.get("type") in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED)
    operation = stats.get("operation", libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
    return running and operation == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT


def job_from_stats(stats: dict, postcopy: bool = False) -> MigrationJob:
    """libvirt's jobStats() → MigrationJob: running (active), completed (`downtime` is then the real one), or none.

    libvirt names the same key `downtime` for the expected downtime of a running job and the measured
    downtime of a completed one."""
    completed = stats.get("type") == libvirt.VIR_DOMAIN_JOB_COMPLETED
    active = is_migration(stats)
    if not (active or completed):
        return MigrationJob()
    downtime = int(stats.get("downtime", 0))
    return MigrationJob(
        active=active,
        time_elapsed_ms=int(stats.get("time_elapsed", 0)),
        data_total=int(stats.get("data_total", stats.get("memory_total", 0))),
        data_processed=int(stats.get("data_processed", stats.get("memory_processed", 0))),
        data_remaining=int(stats.get("data_remaining", stats.get("memory_remaining", 0))),
        dirty_rate=int(stats.get("memory_dirty_rate", 0)),
        expected_downtime_ms=downtime if active else 0,
        downtime_ms=downtime if completed else 0,
        memory_bps=int(stats.get("memory_bps", 0)),
        phase="postcopy" if postcopy else "precopy",
    )


def first_pass_done(stats: dict) -> bool:
    """Post-copy starts once QEMU has sent all memory once (libvirt's memory_iteration counts the passes)."""
    return is_migration(stats) and int(stats.get("memory_iteration", 0)) >= POSTCOPY_AFTER_ITERATION


def in_postcopy(state: int, reason: int) -> bool:
    """What libvirt says of a domain whose migration switched to post-copy (running here until it ends)."""
    return ((state == libvirt.VIR_DOMAIN_RUNNING and reason == libvirt.VIR_DOMAIN_RUNNING_POSTCOPY)
            or (state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY))


@dataclass(frozen=True)
class HostMemory:
    total_mib: int
    available_mib: int


def parse_meminfo(text: str) -> HostMemory:
    """/proc/meminfo's MemTotal and MemAvailable (kB) in MiB."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key.strip()] = int(fields[0])
    return HostMemory(total_mib=values.get("MemTotal", 0) // 1024,
                      available_mib=values.get("MemAvailable", values.get("MemFree", 0)) // 1024)
