"""Live migration of a running VM from its host to another, cancelled on request, settled after a restart.

The order of `migrate`:

1. check the request (domain/migration.py) and everything that refuses before anything
   moves — the VM runs, is not busy, the destination exists, is reachable and is not its
   host, and the placement's filters accept it (every reason at once);
2. in one short transaction: the vm_migrations row (running) — the VM's claim for the
   whole migration, so stop, start, vNIC changes and a second migration are refused;
3. the source agent's MigrateVm, in a thread of its own with no transaction open (libvirt
   migrates peer to peer; the call returns when the job has ended), while the caller's
   stream polls the source's job about once a second for progress;
4. in one transaction: the VM's host, its vNICs' devices on the destination (its GetVm)
   and the row succeeded — or, on failure or cancel, only the row: the VM keeps running on
   the source and its record does not change.

A manager that dies between 2 and 4 leaves the row running. The next one (and this one,
when a MigrateVm call ends without an answer) settles it by asking the hosts — never by
guessing: a job still running on the source is waited for, then where the domain runs
decides (domain/migration.py `settle`). The settling thread retries rows whose hosts do
not answer, so a source agent that comes back gets its migration recorded.

The migration thread is independent of the caller: a client that goes away does not stop
the migration or its bookkeeping.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Iterator, Protocol

import psycopg
from psycopg_pool import ConnectionPool
from virtfleet import failpoints
from virtfleet.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unimplemented,
    VirtfleetError,
)
from virtfleet.v1 import vm_pb2

from ..agents import AgentClients
from ..domain.migration import (
    MigrationOptions,
    RunningMigration,
    Settlement,
    SettleOutcome,
    settle,
)
from ..store import hosts as host_store
from ..store import vm_migrations as store
from ..store import vms as vm_store
from ..store.vms import HostRef, VmRecord
from .events import RecordSystem, no_record_system
from .migrationnet import migration_address
from .vm_calls import VmAgentCalls, refuse_busy
from .vmobjects import VmView, read_vm_view
from .vnic_messages import runtime

log = logging.getLogger(__name__)

POLL_S = 1.0                  # progress: the source's job info about once a second
SETTLE_EVERY_S = 5.0          # rows whose hosts did not answer are asked again this often
CANCEL_WAIT_S = 60.0          # a cancel waits this long for the migration's row to be settled
ABORT_RETRY_S = 5.0           # a cancel before libvirt's job began tries again for this long
RESULT_SLACK_S = 120.0        # beyond the migration's own timeout, for MigrateVm's answer
_RUNS = frozenset({vm_pb2.VM_STATE_RUNNING, vm_pb2.VM_STATE_PAUSED, vm_pb2.VM_STATE_BLOCKED,
                   vm_pb2.VM_STATE_SHUTTING_DOWN})


class PlacementChecks(Protocol):
    """What migration asks the scheduler (manager/service/placement.py)."""

    def choose(self, vm_name: str, purpose: str = "start", *, exclude: frozenset[str] = frozenset()) -> str: ...
    def check(self, vm_name: str, host: str, purpose: str = "migrate") -> list[str]: ...
    def explain(self, vm_name: str, purpose: str = "start", *, exclude: frozenset[str] = frozenset()): ...


@dataclass(frozen=True)
class Progress:
    """One message of a migration's stream (vms.proto MigrationProgress)."""

    vm: str
    source: str
    destination: str
    time_elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    dirty_rate: int = 0
    expected_downtime_ms: int = 0
    done: bool = False
    downtime_ms: int = 0
    phase: str = ""


@dataclass
class Running:
    """A migration this manager runs now (its thread records the outcome, whoever is still watching)."""

    id: int
    vm: VmRecord
    source: HostRef
    dest: HostRef
    options: MigrationOptions
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    error: VirtfleetError | None = None
    downtime_ms: int = 0


def _uri_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def progress_of(r: Running, job: vm_pb2.MigrationJob) -> Progress:
    return Progress(r.vm.name, r.source.name, r.dest.name, job.time_elapsed_ms, job.data_total, job.data_processed,
                    job.data_remaining, job.dirty_rate, job.expected_downtime_ms, False, 0, job.phase)


class MigrationService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients, placement: PlacementChecks, *,
                 default_timeout_s: float = 600.0, record_system: RecordSystem = no_record_system,
                 refresh: Callable[[str], object] | None = None) -> None:
        """`refresh(host)`: ask the destination's agent now what it has (memory, libvirt networks, network
        filters: service/hostmemory.py `learn`), so the checks judge it as it is, not as it was at connect."""
        self._pool = pool
        self._refresh = refresh or (lambda host: None)
        self._agents = agents
        self._calls = VmAgentCalls(pool, agents)
        self._placement = placement
        self._default_timeout_s = default_timeout_s
        self._record_system = record_system
        self._lock = threading.Lock()
        self._mine: dict[int, Running | None] = {}    # vm id → its migration run or settled by this process
        self._choosing = threading.Lock()             # choose + row insert, so promised memory is seen
        self._stop = threading.Event()
        self._settler: threading.Thread | None = None

    @property
    def placement(self) -> PlacementChecks:
        return self._placement

    # -- migrating ---------------------------------------------------------------------------------

    def migrate(self, name: str, to: str = "", options: MigrationOptions = MigrationOptions()) -> Iterator[Progress]:
        """Check, start, and follow one migration; the last message has `done` set, a failure raises."""
        with self._calls.change(f"migrating VM {name}"):
            run = self.start(name, to, options)
            yield from self.follow(run)

    def start(self, name: str, to: str, options: MigrationOptions, *,
              exclude: frozenset[str] = frozenset()) -> Running:
        """Everything checked, the row in, the migration thread started. Without `to`, placement chooses
        (never a host in `exclude`), under the lock that makes parallel choices see each other's rows."""
        with self._choosing:
            vm, source, dest = self._checked(name, to, exclude)
            run = self._begin(vm, source, dest, options)
        threading.Thread(target=self._run, args=(run,), name=f"migrate-{name}", daemon=True).start()
        return run

    def follow(self, run: Running) -> Iterator[Progress]:
        while not run.done.wait(POLL_S):
            job = self._job(run.source, run.vm.name)
            if job is not None and job.active:
                yield progress_of(run, job)
        if run.error is not None:
            raise run.error
        yield Progress(run.vm.name, run.source.name, run.dest.name, done=True, downtime_ms=run.downtime_ms)

    def wait(self, run: Running) -> None:
        """Until the migration has ended; raises its error."""
        run.done.wait()
        if run.error is not None:
            raise run.error

    def _checked(self, name: str, to: str, exclude: frozenset[str]) -> tuple[VmRecord, HostRef, HostRef]:
        with self._pool.connection() as conn:
            vm = vm_store.get_vm(conn, name)
        source = vm.placement
        if source is None:
            raise FailedPrecondition(f"VM {name} is not running: only a running VM migrates (start it where it "
                                     "should run: `virtfleet vm start --host`)")
        if vm.migrating_to:
            raise FailedPrecondition(f"VM {name} is being migrated to {vm.migrating_to} already; wait for that "
                                     f"migration to end or cancel it (`virtfleet vm migrate --cancel {name}`)")
        refuse_busy(vm)
        if to == source.name:
            raise FailedPrecondition(f"VM {name} runs on host {to} already (to): give another host, or none to "
                                     "let placement choose")
        with self._pool.connection() as conn:
            if host_store.get_host(conn, source.name).status == "unreachable":
                raise FailedPrecondition(f"the VM's host {source.name} is unreachable: it cannot be asked to "
                                         f"migrate VM {name}")
        if not to:
            to = self.choose_destination(vm, exclude | {source.name})
        dest = self._destination(conn_pool=self._pool, to=to)
        try:
            self._refresh(dest.name)
        except VirtfleetError as err:   # judged on what it said last; an unreachable host is refused anyway
            log.info("host %s could not say what it has now (%s); judged on what it said last", dest.name,
                     err.message)
        reasons = self._placement.check(name, dest.name, "migrate")
        if reasons:
            raise FailedPrecondition(f"VM {name} cannot migrate to host {dest.name}: " + "; ".join(reasons))
        return vm, source, dest

    def choose_destination(self, vm: VmRecord, exclude: frozenset[str]) -> str:
        """Placement's best host. Placement counts the memory of VMs migrating to a host (recorded on their
        source until done) against it; this runs under `_choosing`, held until this migration's row is in, so
        parallel choices (maintenance) see each other's promises."""
        return self._placement.choose(vm.name, "migrate", exclude=exclude)

    @staticmethod
    def _destination(*, conn_pool: ConnectionPool, to: str) -> HostRef:
        with conn_pool.connection() as conn:
            try:
                host = host_store.get_host(conn, to)
            except NotFound:
                raise NotFound(f"host {to!r} does not exist (to)") from None
        if host.status == "unreachable":
            raise FailedPrecondition(f"host {to} is unreachable (to): its agent has not reported lately; "
                                     "a VM migrates only to a host that answers")
        return HostRef(host.id, host.name, host.endpoint)

    def _begin(self, vm: VmRecord, source: HostRef, dest: HostRef, options: MigrationOptions) -> Running:
        """The row (the VM's claim) in a short transaction under the VM's row lock, checked again there."""
        with self._lock:
            if vm.id in self._mine:
                raise FailedPrecondition(f"VM {vm.name} is being migrated already")
            self._mine[vm.id] = None   # the settling thread leaves rows of VMs this process handles alone
        try:
            with self._pool.connection() as conn, conn.transaction():
                now = vm_store.get_vm(conn, vm.name, lock=True)
                if now.placement != source:
                    raise Aborted(f"VM {vm.name} changed while its migration was checked (it is now "
                                  f"{now.state}{' on ' + now.host if now.host else ''}); nothing moved")
                refuse_busy(now)
                migration_id = store.start(conn, vm.id, vm.name, source.id, dest.id, options)
        except BaseException:
            with self._lock:
                self._mine.pop(vm.id, None)
            raise
        run = Running(migration_id, vm, source, dest, options)
        with self._lock:
            self._mine[vm.id] = run
        log.info("migrating VM %s from %s to %s", vm.name, source.name, dest.name)
        self._record_system("vm.migration_started", "vm", vm.name,
                            {"from": source.name, "to": dest.name, **options.as_json()},
                            f"from {source.name} to {dest.name}")
        return run

    def _request(self, run: Running) -> vm_pb2.MigrateVmRequest:
        o = run.options
        address = _uri_host(migration_address(self._pool, run.vm.cluster, run.dest.name))
        with self._pool.connection() as conn:
            management = _uri_host(host_store.get_host(conn, run.dest.name).address)
        return vm_pb2.MigrateVmRequest(
            name=run.vm.name, dest_uri=f"qemu+tls://{management}/system", migrate_uri=f"tcp://{address}",
            max_downtime_ms=o.max_downtime_ms, bandwidth_mib_s=o.bandwidth_mib_s, auto_converge=o.auto_converge,
            post_copy=o.post_copy, timeout_s=o.timeout_s or int(self._default_timeout_s), dest_name=run.dest.name)

    def _run(self, run: Running) -> None:
        """The migration thread: MigrateVm on the source, then the record, whatever the caller does meanwhile."""
        try:
            reply = self._migrate_on_source(run)
            if reply is None:
                return
            failpoints.hit("migration.after_agent_call")
            run.downtime_ms = reply.final.downtime_ms
            try:
                self._record_moved(run.id, run.vm, run.source.id, run.source.name, run.dest, run.downtime_ms)
            except Exception:   # noqa: BLE001 - it moved: the row stays running, the settling thread records it
                log.exception("VM %s moved to %s but could not be recorded yet", run.vm.name, run.dest.name)
                run.error = Unavailable(f"VM {run.vm.name} moved to {run.dest.name}, but the manager could not "
                                        "record it yet; it is recorded as soon as it can")
        finally:
            with self._lock:
                self._mine.pop(run.vm.id, None)
            run.done.set()

    def _migrate_on_source(self, run: Running) -> vm_pb2.MigrateVmResponse | None:
        """The source agent's answer; None when the migration did not (knowingly) move the VM (`run.error` set)."""
        try:
            request = self._request(run)
            failpoints.hit("migration.before_agent_call")
            return self._agents.call_vm(run.source.name, run.source.endpoint,
                                        lambda s, t: s.MigrateVm(request, timeout=t),
                                        extra_s=request.timeout_s + RESULT_SLACK_S, for_caller=False)
        except (Unavailable, DeadlineExceeded) as err:   # no answer: it may have moved; the hosts will say
            run.error = self._settle_mine(run, err)
            if run.error is None:
                run.downtime_ms = 0
        except VirtfleetError as err:
            run.error = self._record_failed(run, err)
        except Exception as exc:   # noqa: BLE001 - recorded as the migration's failure, logged whole
            log.exception("migration of VM %s failed", run.vm.name)
            run.error = self._record_failed(run, Internal(f"internal error: {exc}"))
        return None

    def _record_moved(self, migration_id: int, vm: VmRecord, source_id: int | None, source: str, dest: HostRef,
                      downtime_ms: int | None, message: str = "") -> None:
        """The VM runs on `dest`: host, devices there (its GetVm) and the row in one transaction."""
        try:
            status = self._agents.call_vm(dest.name, dest.endpoint, lambda s, t: s.GetVm(
                vm_pb2.GetVmRequest(name=vm.name), timeout=t), for_caller=False)
            devices = runtime(status)
        except VirtfleetError as err:   # it moved all the same: the devices are learned at the next start
            log.warning("VM %s moved to %s, whose devices could not be read: %s", vm.name, dest.name, err.message)
            devices = []
        failpoints.hit("migration.before_record")
        with self._pool.connection() as conn, conn.transaction():
            recorded = store.record_moved(conn, migration_id, vm.id, source_id, dest.id, devices, message,
                                          downtime_ms)
        if not recorded:
            log.warning("VM %s moved to %s but its record had changed meanwhile; left to the audit", vm.name,
                        dest.name)
            return
        log.info("migrated VM %s from %s to %s (downtime %s ms)", vm.name, source, dest.name, downtime_ms)
        self._record_system("vm.migration_succeeded", "vm", vm.name,
                            {"from": source, "to": dest.name, "downtime_ms": downtime_ms or 0},
                            message or f"now on {dest.name}")

    def _record_failed(self, run: Running, err: VirtfleetError) -> VirtfleetError:
        """The row failed (cancelled), the VM's record untouched; the caller's error."""
        state = "cancelled" if run.cancelled else "failed"
        message = "cancelled" if run.cancelled else err.message
        try:
            with self._pool.connection() as conn, conn.transaction():
                store.finish(conn, run.id, state, message)
        except psycopg.Error:
            log.exception("could not record the end of VM %s's migration; the settling thread will", run.vm.name)
        self._record_system(f"vm.migration_{state}", "vm", run.vm.name,
                            {"from": run.source.name, "to": run.dest.name}, message)
        if run.cancelled:
            return Aborted(f"migration of VM {run.vm.name} to {run.dest.name} cancelled; it runs on "
                           f"{run.source.name}")
        said = f"migration of VM {run.vm.name} to {run.dest.name} failed, it runs on {run.source.name}: {err.message}"
        if isinstance(err, InvalidArgument):   # the agent's request field, not the admin's: a refusal
            return FailedPrecondition(said)
        return type(err)(said)

    def _settle_mine(self, run: Running, err: VirtfleetError) -> VirtfleetError | None:
        """MigrateVm ended without an answer: ask the hosts; None when it moved after all."""
        row = RunningMigration(run.id, run.vm.id, run.vm.name, run.source.id, run.source.name, run.dest.id,
                               run.dest.name)
        try:
            outcome = self._settle(row)
        except VirtfleetError as again:
            log.warning("migration of VM %s: no answer (%s), and the hosts cannot say where it runs (%s); "
                        "settled when they answer", run.vm.name, err.message, again.message)
            return Unavailable(f"migration of VM {run.vm.name}: {err.message}; where it runs is recorded when "
                               f"hosts {run.source.name} and {run.dest.name} answer again")
        if outcome is None:
            return Unavailable(f"migration of VM {run.vm.name}: the manager stopped before it ended; the next "
                               "start settles it")
        if outcome.moves_record:
            return None
        return FailedPrecondition(outcome.message) if not run.cancelled else Aborted(outcome.message)

    def _job(self, host: HostRef, vm: str) -> vm_pb2.MigrationJob | None:
        try:
            return self._agents.call_vm(host.name, host.endpoint, lambda s, t: s.GetMigrationJob(
                vm_pb2.GetMigrationJobRequest(name=vm), timeout=min(t, 10.0)), for_caller=False)
        except VirtfleetError as err:
            log.debug("no migration job info of VM %s on %s: %s", vm, host.name, err.message)
            return None

    # -- cancelling --------------------------------------------------------------------------------

    def cancel(self, name: str) -> VmView:
        """Abort the VM's running migration on its source; returns the VM once the migration has ended."""
        with self._pool.connection() as conn:
            vm = vm_store.get_vm(conn, name)
            row = store.running_for(conn, vm.id)
            if row is None:
                raise FailedPrecondition(f"no migration of VM {name} runs")
            source = host_store.get_host(conn, row.source) if row.source else None
        if source is None:
            raise FailedPrecondition(f"the source host of VM {name}'s migration was deleted; nothing to cancel")
        ref = HostRef(source.id, source.name, source.endpoint)
        with self._lock:
            run = self._mine.get(vm.id)
        if run is not None:
            run.cancelled = True
        abort = vm_pb2.AbortMigrationJobRequest(name=name)
        deadline = time.monotonic() + ABORT_RETRY_S
        while True:
            reply = self._calls.call(ref, lambda s, t: s.AbortMigrationJob(abort, timeout=t))
            # libvirt's job may not have begun yet (MigrateVm is still connecting): try again, briefly
            if reply.cancelled or run is None or run.done.is_set() or time.monotonic() > deadline:
                break
            run.done.wait(0.2)
        if run is not None:
            run.done.wait(CANCEL_WAIT_S)
        return read_vm_view(self._pool, name)

    # -- settling rows left running -----------------------------------------------------------------

    def start_settling(self) -> None:
        """The thread that settles migrations this process does not run (a previous life's), and keeps
        asking hosts that do not answer."""
        if self._settler is None:
            self._settler = threading.Thread(target=self._settle_loop, name="migration-settler", daemon=True)
            self._settler.start()

    def stop(self) -> None:
        self._stop.set()
        if self._settler is not None:
            self._settler.join(timeout=10)

    def _settle_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.settle_left_over()
            except Exception:   # noqa: BLE001 - the database away, a bug: logged, tried again
                log.exception("settling running migrations failed; trying again")
            self._stop.wait(SETTLE_EVERY_S)

    def settle_left_over(self) -> int:
        """Settle every running row this process does not handle; how many are still unsettled."""
        with self._pool.connection() as conn:
            rows = store.running(conn)
        left = 0
        for row in rows:
            with self._lock:
                if row.vm_id in self._mine:
                    continue
                self._mine[row.vm_id] = None
            try:
                if self._settle(row) is None:
                    left += 1
            except VirtfleetError as err:
                left += 1
                log.info("migration of VM %s not settled yet: %s", row.vm, err.message)
            finally:
                with self._lock:
                    self._mine.pop(row.vm_id, None)
        return left

    def _settle(self, row: RunningMigration) -> SettleOutcome | None:
        """Ask the hosts and record what they say; None while the job still runs (and we are stopping).
        Raises when a host that must be asked does not answer."""
        with self._pool.connection() as conn:
            source = self._ref(conn, row.source)
            dest = self._ref(conn, row.destination)
        while True:
            job = self._job_or_raise(source, row.vm) if source else None
            outcome = settle(row, bool(job and job.active), self._runs(source, row.vm), self._runs(dest, row.vm))
            if outcome.settlement is not Settlement.WAIT:
                break
            if self._stop.wait(POLL_S):
                return None
        if outcome.moves_record and dest is not None:
            self._record_moved(row.id, self._vm(row.vm), row.source_host_id, row.source or "", dest, None,
                               outcome.message)
        else:
            with self._pool.connection() as conn, conn.transaction():
                store.finish(conn, row.id, outcome.state, outcome.message)
            self._record_system("vm.migration_failed", "vm", row.vm,
                                {"from": row.source or "", "to": row.destination or "",
                                 "settlement": outcome.settlement.value}, outcome.message)
        log.info("migration #%d of VM %s settled: %s", row.id, row.vm, outcome.message)
        return outcome

    def _vm(self, name: str) -> VmRecord:
        with self._pool.connection() as conn:
            return vm_store.get_vm(conn, name)

    @staticmethod
    def _ref(conn: psycopg.Connection, name: str | None) -> HostRef | None:
        if name is None:
            return None
        h = host_store.get_host(conn, name)
        return HostRef(h.id, h.name, h.endpoint)

    def _job_or_raise(self, host: HostRef, vm: str) -> vm_pb2.MigrationJob | None:
        try:
            return self._agents.call_vm(host.name, host.endpoint, lambda s, t: s.GetMigrationJob(
                vm_pb2.GetMigrationJobRequest(name=vm), timeout=t), for_caller=False)
        except (Unimplemented, NotFound):   # an agent from before migration runs no job
            return None

    def _runs(self, host: HostRef | None, vm: str) -> bool:
        """Whether the domain runs there (raises when the host does not answer)."""
        if host is None:
            return False
        try:
            status = self._agents.call_vm(host.name, host.endpoint, lambda s, t: s.GetVm(
                vm_pb2.GetVmRequest(name=vm), timeout=t), for_caller=False)
        except NotFound:
            return False
        return status.state in _RUNS
