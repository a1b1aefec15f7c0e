"""Running VMs on hosts: start (placement, define, start, read back) and stop.

No transaction or lock is held across an agent call (vm_calls.py): the VM is
claimed, the host called with nothing open, and the result recorded only if the
claim still holds — else the start is undone on the host.
"""
from __future__ import annotations

import logging
import uuid
from typing import Sequence

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import rules
from virtfleet.errors import Aborted, FailedPrecondition, InvalidArgument, VirtfleetError
from virtfleet.v1 import vm_pb2

from ..agents import AgentClients
from ..domain.vnic import Vnic
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import HostRef, VmRecord
from .vm_calls import VmAgentCalls, refuse_busy
from .vmobjects import VmView, vm_view
from .vnic_messages import agent_vnic_on, runtime, spec_violation

log = logging.getLogger(__name__)


class VmRuntime:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._calls = VmAgentCalls(pool, agents)

    def _view(self, name: str) -> VmView:
        with self._pool.connection() as conn:
            return vm_view(conn, name)

    def start(self, name: str, *, host: str = "", paused: bool = False) -> VmView:
        """Define and start the VM on a host; store the PCI addresses and devices the host reports."""
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {name} is already running on {vm.host}")
            refuse_busy(vm)
            target = self._pick_host(conn, vm, host)
            nics = vnic_store.vm_vnics(conn, vm.id)
            networks = vnic_store.network_refs(conn, vm.datacenter)
            spec = vm_pb2.VmSpec(name=vm.name, memory_mib=vm.memory_mib, vcpus=vm.vcpus,
                                 nics=[agent_vnic_on(n, networks) for n in nics])
            token = store.claim(conn, vm.id)
        try:
            status = self._define_and_start(target, spec, nics, paused)
        except BaseException:
            self._calls.release(vm.id, token)
            raise
        if not self._record_start(vm.id, token, target, status):
            self._undo_start(target, vm.name)
            raise Aborted(f"VM {name} changed while it was being started on {target.name} (deleted, or taken over "
                          f"after its claim expired); it was stopped there again")
        log.info("started VM %s on %s", name, target.name)
        return self._view(name)

    def _define_and_start(self, host: HostRef, spec: vm_pb2.VmSpec, nics: Sequence[Vnic],
                          paused: bool) -> vm_pb2.VmStatus:
        try:
            self._calls.call(host, lambda s, t: s.DefineVm(vm_pb2.DefineVmRequest(spec=spec), timeout=t))
        except InvalidArgument as err:
            raise spec_violation(err, nics) from None
        try:
            return self._calls.call(host, lambda s, t: s.StartVm(vm_pb2.StartVmRequest(name=spec.name, paused=paused),
                                                           timeout=t))
        except VirtfleetError:
            self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=spec.name),
                                                                      timeout=t))
            raise

    def _record_start(self, vm_id: int, token: uuid.UUID, host: HostRef, status: vm_pb2.VmStatus) -> bool:
        """Up on `host` if the VM is still ours to start; False when it changed (or the host went) meanwhile."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                if not store.finish_start(conn, vm_id, token, host.id):
                    return False
                vnic_store.store_runtime(conn, vm_id, runtime(status))
                return True
        except psycopg.errors.ForeignKeyViolation:   # the host was deleted meanwhile
            return False

    def _undo_start(self, host: HostRef, vm: str) -> None:
        self._calls.quietly(host, "destroy", lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=vm), timeout=t))
        self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=vm), timeout=t))

    @staticmethod
    def _pick_host(conn: psycopg.Connection, vm: VmRecord, host: str) -> HostRef:
        """The named host if it is up in the VM's cluster, else the least loaded one."""
        candidates = [load.host for load in store.host_loads(conn, vm.cluster_id)]
        if host:
            for c in candidates:
                if c.name == host:
                    return c
            raise FailedPrecondition(f"host {host!r} is not up in cluster {vm.cluster}")
        if not candidates:
            raise FailedPrecondition(f"cluster {vm.cluster} has no host that is up")
        return candidates[0]

    def stop(self, name: str, *, force: bool = False, timeout_s: int = 0) -> VmView:
        rules.timeout_s(timeout_s)
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            host = vm.placement
            if host is None:
                raise FailedPrecondition(f"VM {name} is not running")
            refuse_busy(vm)
            token = store.claim(conn, vm.id)
        try:
            if force:
                self._calls.call(host, lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=name), timeout=t))
            else:
                wait = timeout_s or 60
                self._calls.call(host, lambda s, t: s.StopVm(vm_pb2.StopVmRequest(name=name, timeout_s=wait),
                                                       timeout=t + wait))
        except BaseException:
            self._calls.release(vm.id, token)
            raise
        self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=name), timeout=t))
        with self._pool.connection() as conn, conn.transaction():
            if not store.finish_stop(conn, vm.id, host.id):
                log.warning("VM %s was stopped on %s but is no longer recorded there", name, vm.host)
        return self._view(name)
