"""Host maintenance: every VM migrated away, then the host is out of placement until it is activated.

Refused up front (FAILED_PRECONDITION) when any VM cannot move, with each VM and why, so
nothing moves on a request that cannot finish. Else the host is 'preparing' (placement
no longer picks it), its VMs migrate `max_parallel` at once, each to the host placement
chooses. Parallel choices must not promise one host's memory twice: MigrationService
chooses under a lock held until that migration's row is in, and counts the memory of VMs
migrating to a host already (their rows) against it.

A VM that fails to move does not stop the others: the rest still migrate, and then the
host stays 'preparing' and the call fails naming every VM that did not move and why.
Running `host maintenance` again retries those; `host activate` puts the host back.
"""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

from psycopg_pool import ConnectionPool
from virtfleet.errors import FailedPrecondition, VirtfleetError

from ..domain.migration import MigrationOptions
from ..store import hosts as host_store
from ..store import vms as vm_store
from ..store.vms import VmRecord
from .events import RecordSystem, no_record_system
from .migrations import MigrationService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceStep:
    """One message of the stream (fleet.proto MaintenanceProgress)."""

    host: str
    vm: str
    destination: str
    state: str          # "migrating" | "migrated" | "failed" | "maintenance"
    message: str
    remaining: int


class MaintenanceService:
    def __init__(self, pool: ConnectionPool, migrations: MigrationService, *, max_parallel: int = 2,
                 record_system: RecordSystem = no_record_system) -> None:
        self._pool = pool
        self._migrations = migrations
        self._max_parallel = max(1, max_parallel)
        self._record_system = record_system

    def set_maintenance(self, host: str) -> Iterator[MaintenanceStep]:
        with self._pool.connection() as conn:
            record = host_store.get_host(conn, host)
            state = record.maintenance
            vms = self._running_on(conn, record.id)
        if state == "maintenance" and not vms:
            yield MaintenanceStep(host, "", "", "maintenance", f"host {host} is in maintenance already", 0)
            return
        self._refuse_unmovable(host, vms)
        with self._pool.connection() as conn, conn.transaction():
            host_store.set_maintenance(conn, host, "preparing")
        self._record_system("host.maintenance_preparing", "host", host, {"vms": len(vms)},
                            f"migrating {len(vms)} VMs away")
        failed = yield from self._migrate_all(host, vms)
        with self._pool.connection() as conn, conn.transaction():
            left = self._running_on(conn, record.id)
            if not left:
                host_store.set_maintenance(conn, host, "maintenance")
        if left or failed:
            named = "; ".join(f"{vm}: {why}" for vm, why in sorted(failed.items())) or \
                ", ".join(v.name for v in left) + " still run there"
            self._record_system("host.maintenance_failed", "host", host, {"failed": sorted(failed)}, named)
            raise FailedPrecondition(f"host {host} stays preparing for maintenance: {len(left)} VMs did not move "
                                     f"({named}); run `virtfleet host maintenance {host}` again, or `virtfleet host "
                                     f"activate {host}`")
        self._record_system("host.maintenance", "host", host, {}, "no VM runs there; out of placement")
        yield MaintenanceStep(host, "", "", "maintenance", f"host {host} is in maintenance", 0)

    @staticmethod
    def _running_on(conn, host_id: int) -> list[VmRecord]:
        return [v for v in vm_store.list_vms(conn) if v.host_id == host_id and v.state == "up"]

    def _refuse_unmovable(self, host: str, vms: list[VmRecord]) -> None:
        """Every VM that could not move now, and why: all of them in one refusal, before anything moves."""
        placement = self._migrations.placement
        problems = []
        for vm in vms:
            if vm.busy:
                problems.append(f"VM {vm.name}: " + (f"is being migrated to {vm.migrating_to}" if vm.migrating_to
                                                     else "is being changed by another request"))
                continue
            try:
                placement.choose(vm.name, "migrate", exclude=frozenset({host}))
            except VirtfleetError as err:
                problems.append(f"VM {vm.name}: {err.message}")
        if problems:
            raise FailedPrecondition(f"host {host} cannot go into maintenance; {len(problems)} of its {len(vms)} "
                                     "VMs cannot move: " + "; ".join(problems))

    def _migrate_all(self, host: str, vms: list[VmRecord]) -> Iterator[MaintenanceStep]:
        """Streams each VM's steps as they happen; returns VM → why, for those that did not move."""
        steps: queue.Queue[MaintenanceStep | None] = queue.Queue()
        failed: dict[str, str] = {}
        remaining = [len(vms)]
        lock = threading.Lock()

        def one(vm: VmRecord) -> None:
            dest = ""
            try:
                run = self._migrations.start(vm.name, "", MigrationOptions(), exclude=frozenset({host}))
                dest = run.dest.name
                steps.put(MaintenanceStep(host, vm.name, dest, "migrating", f"to {dest}", remaining[0]))
                self._migrations.wait(run)
                with lock:
                    remaining[0] -= 1
                steps.put(MaintenanceStep(host, vm.name, dest, "migrated", f"now on {dest}", remaining[0]))
            except VirtfleetError as err:
                with lock:
                    failed[vm.name] = err.message
                steps.put(MaintenanceStep(host, vm.name, dest, "failed", err.message, remaining[0]))
            except Exception as exc:   # noqa: BLE001 - one VM's failure, named; the others go on
                log.exception("maintenance of %s: migrating VM %s failed", host, vm.name)
                with lock:
                    failed[vm.name] = str(exc)
                steps.put(MaintenanceStep(host, vm.name, dest, "failed", str(exc), remaining[0]))

        with ThreadPoolExecutor(self._max_parallel, thread_name_prefix=f"maintenance-{host}") as pool:
            futures = [pool.submit(one, vm) for vm in vms]
            threading.Thread(target=lambda: ([f.result() for f in futures], steps.put(None)), daemon=True).start()
            while (step := steps.get()) is not None:
                yield step
        return failed
