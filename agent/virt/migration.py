"""Live migration of a VM from this host's libvirtd to another host's, and what placement needs of this host.

`migrate_vm` is the whole algorithm on one screen: check the order (migrationjob),
take the VM's turn (its other changes wait; reads, `migration_job` and
`abort_migration` never do), refuse a VM that is not running, start libvirt's
peer-to-peer job and watch it from a second thread (the downtime limit once it
runs, post-copy after the first pass when asked, the abort when the timeout is
reached), then read the completed job's statistics where the VM now is (the
destination: here the domain is gone with the job) and tidy this host's bridges
(port mirrors to the VM's vanished taps).

The destination needs nothing from its agent: the domain appears in its libvirtd,
persistent, and every read and change of the agent works on it as on a VM it
defined (the agent keeps no VM state outside libvirt; port mirroring wishes and
link states travel in the domain XML). Not yet settled there: the host side the
destination's libvirtd does not make — a mirroring vNIC's tc mirror, and the tap of
a vNIC whose cable is out (libvirt makes it up). The mirrors follow at the next VM
change on that host that syncs them (a stop, destroy, unplug, or a mirroring start
or plug); the tap's state at the VM's next link change.

The serial console of a VM with an OS is a file in the source agent's state
directory (`<serial type='file' append='on'>`): the destination's QEMU opens the
same path. In the lab both agents share one filesystem, so it works; on real hosts
the path must exist on the destination too (the same console directory on every
host; its content stays per host).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import libvirt

from virtfleet.errors import Aborted, FailedPrecondition, Unavailable

from . import mirror_tc
from .connection import Hypervisor, translate
from .lifecycle import _lookup
from .migrationjob import (HostMemory, MigrationJob, MigrationOrder, first_pass_done, flags, in_postcopy,
                           is_migration, job_from_stats, params, parse_meminfo, peer_uri, validate)

log = logging.getLogger(__name__)

POLL_S = 0.2
MEMINFO = Path("/proc/meminfo")
_UNREACHABLE = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_AUTH_FAILED,
                libvirt.VIR_ERR_SYSTEM_ERROR}


def migrate_vm(hv: Hypervisor, order: MigrationOrder) -> MigrationJob:
    """Blocks until libvirt's job has ended; the completed job's statistics, or the typed error it ended with."""
    validate(order)
    with hv.vm_change(order.name, "migrate"):
        dom = _lookup(hv.conn, order.name)
        if not _running(dom):
            raise FailedPrecondition(f"VM {order.name!r} is not running on this host; only a running VM migrates "
                                     "live")
        if order.max_downtime_ms:
            try:
                dom.migrateSetMaxDowntime(order.max_downtime_ms)
            except libvirt.libvirtError as err:
                raise translate(err, f"setting the maximum downtime of VM {order.name!r}") from err
        peer = peer_uri(order.dest_uri, str(hv.libvirt_pki_dir))
        watch = _JobWatch(dom, order)
        watch.start()
        log.info("migrating VM %s to %s (%s)", order.name, order.destination, order.dest_uri)
        try:
            dom.migrateToURI3(peer, params(order), flags(order))
        except libvirt.libvirtError as err:
            raise _refusal(err, order, watch) from err
        finally:
            watch.stop()
        final = _completed_at(peer, order.name) or watch.last_job(completed=True)
        mirror_tc.sync_quietly(hv.conn)   # its taps are gone from here, and so must the mirrors to them
        log.info("VM %s migrated to %s: %d ms downtime, %d ms in all", order.name, order.destination,
                 final.downtime_ms, final.time_elapsed_ms)
        return final


def _running(dom: libvirt.virDomain) -> bool:
    try:
        state, _ = dom.state()
    except libvirt.libvirtError as err:
        raise translate(err, f"VM {dom.name()!r}") from err
    return state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_BLOCKED)


class _JobWatch:
    """Watches one running migration from its own thread: the last statistics seen, post-copy, the timeout."""

    def __init__(self, dom: libvirt.virDomain, order: MigrationOrder) -> None:
        self._dom = dom
        self._order = order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"migration-{order.name}", daemon=True)
        self._stats: dict = {}
        self.postcopy = False
        self.timed_out = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def last_job(self, completed: bool = False) -> MigrationJob:
        stats = dict(self._stats)
        if completed and stats:
            stats["type"] = libvirt.VIR_DOMAIN_JOB_COMPLETED
            stats["downtime"] = 0   # only the expected downtime was seen: the real one is unknown
        return job_from_stats(stats, self.postcopy)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(POLL_S):
            try:
                stats = self._dom.jobStats()
            except libvirt.libvirtError:
                continue   # the domain went with the job's end; stop() comes next
            if is_migration(stats):
                self._stats = stats
            try:
                self._act(stats, time.monotonic() - started)
            except libvirt.libvirtError as err:
                log.warning("migration of VM %s: %s", self._order.name, err.get_error_message())

    def _act(self, stats: dict, elapsed_s: float) -> None:
        order = self._order
        if order.timeout_s and elapsed_s >= order.timeout_s and not self.timed_out:
            self.timed_out = True
            log.warning("migration of VM %s did not finish within %d s: aborting it", order.name, order.timeout_s)
            self._dom.abortJob()
        elif order.post_copy and not self.postcopy and first_pass_done(stats):
            self._dom.migrateStartPostCopy()
            self.postcopy = True
            log.info("migration of VM %s switched to post-copy", order.name)


def _refusal(err: libvirt.libvirtError, order: MigrationOrder, watch: _JobWatch) -> Exception:
    """libvirt's failure → our error type, saying where the VM is now."""
    what = f"migrating VM {order.name!r} to {order.destination}"
    if err.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED:
        if watch.timed_out:
            return Aborted(f"migration of VM {order.name!r} to {order.destination} did not finish within "
                           f"{order.timeout_s} s and was aborted; the VM still runs here")
        return Aborted(f"migration of VM {order.name!r} was cancelled; the VM still runs here")
    if err.get_error_code() in _UNREACHABLE or err.get_error_domain() in (libvirt.VIR_FROM_RPC,
                                                                         libvirt.VIR_FROM_REMOTE):
        return Unavailable(f"{what}: the destination's libvirtd at {order.dest_uri} could not be reached or "
                           f"refused this host: {err.get_error_message()}; the VM still runs here")
    return translate(err, what)


def _completed_at(peer: str, name: str) -> MigrationJob | None:
    """The completed job's statistics as the destination's libvirtd keeps them (the real downtime among
    them); None when it cannot say (then the last statistics seen here stand in)."""
    try:
        conn = libvirt.open(peer)
    except libvirt.libvirtError as err:
        log.info("the destination %s did not give the completed job's statistics: %s", peer,
                 err.get_error_message())
        return None
    try:
        stats = conn.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return None
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    job = job_from_stats(stats)
    return job if job.time_elapsed_ms or job.data_total else None


def migration_job(hv: Hypervisor, name: str) -> MigrationJob:
    """The VM's migration job now; never waits for the VM's turn (MigrateVm holds it while the job runs)."""
    dom = _lookup(hv.conn, name)
    try:
        stats = dom.jobStats()
        state, reason = dom.state()
    except libvirt.libvirtError as err:
        raise translate(err, f"reading the migration job of VM {name!r}") from err
    return job_from_stats(stats, in_postcopy(state, reason))


def abort_migration(hv: Hypervisor, name: str) -> bool:
    """Aborts the VM's running migration (not another kind of job); False when none ran. The MigrateVm call
    then ends ABORTED and the VM keeps running here."""
    dom = _lookup(hv.conn, name)
    try:
        if not is_migration(dom.jobStats()):
            return False
        dom.abortJob()
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
            return False   # the job ended between the two calls
        raise translate(err, f"aborting the migration of VM {name!r}") from err
    log.info("migration of VM %s aborted on request", name)
    return True


def libvirt_offers(hv: Hypervisor) -> tuple[list[str], list[str] | None]:
    """The libvirt networks active now, and the network filters defined (None: no nwfilter driver): what a VM's
    vNICs may need of this host beyond its bridges and NICs."""
    try:
        networks = sorted(hv.conn.listNetworks())
    except libvirt.libvirtError as err:
        raise translate(err, "listing this host's libvirt networks") from err
    try:
        filters: list[str] | None = sorted(hv.conn.listNWFilters())
    except libvirt.libvirtError:
        filters = None   # the driver is missing (libvirt's test driver has none)
    return networks, filters


def host_resources(hv: Hypervisor, meminfo: Path = MEMINFO) -> tuple[HostMemory, int, int]:
    """The host's memory (total, available), the memory its running domains were given (MiB), and how many."""
    memory = parse_meminfo(meminfo.read_text())
    given_kib = running = 0
    try:
        for dom in hv.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                given_kib += dom.info()[1]
            except libvirt.libvirtError:
                continue   # stopped between listing and reading
            running += 1
    except libvirt.libvirtError as err:
        raise translate(err, "listing this host's running VMs") from err
    return memory, given_kib // 1024, running
