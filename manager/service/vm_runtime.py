"""Running VMs on hosts: start (placement, define, start, read back) and stop.

No transaction or lock is held across an agent call (vm_calls.py): the VM is
claimed, the host called with nothing open, and the result recorded only if the
claim still holds — else the start is undone on the host.

Each start or stop holds one of the manager's bounded VM changes while it runs
(vm_calls.VmAgentCalls.change), and its agent calls carry the caller's deadline:
a caller gone already starts nothing, and the agent starts no change after the
deadline its call carries. A call that ended without an answer (deadline,
unreachable agent) may still have started the guest, so a start's undo then
destroys as well as undefines — the agent runs a VM's changes one at a time, so
the undo waits for the start it undoes.
"""
from __future__ import annotations

import logging
import uuid
from typing import Callable, Sequence

import psycopg
from psycopg_pool import ConnectionPool
from virtfleet import failpoints, rules
from virtfleet.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    VirtfleetError,
)
from virtfleet.v1 import vm_pb2

from ..agents import AgentClients
from ..domain.guestnames import GuestInterface
from ..domain.vnic import Vnic
from ..store import profiles as profile_store
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import HostRef, VmRecord
from .boot_messages import boot_message
from .placement import Placement
from .vm_calls import VmAgentCalls, refuse_busy
from .vmobjects import VmView, forget_unplugging, read_vm_view
from .vnic_messages import agent_vnic_on, runtime, spec_violation

log = logging.getLogger(__name__)

GUEST_AGENT_WAIT_S = 2       # what a VM read waits for a guest's agent: names are a bonus, never a delay
GUEST_CALL_CAP_S = 4.0       # the whole agent call, however long the caller would wait


def vm_spec(vm: VmRecord, nics: Sequence[vm_pb2.VNic]) -> vm_pb2.VmSpec:
    """What the agent defines: resources, vNICs in domain XML order, how it boots and on which hypervisor."""
    spec = vm_pb2.VmSpec(name=vm.name, memory_mib=vm.memory_mib, vcpus=vm.vcpus, nics=nics,
                         domain_type=vm.domain_type.for_agent)
    boot = boot_message(vm.boot)
    if boot is not None:
        spec.boot.CopyFrom(boot)
    return spec


class VmRuntime:
    def __init__(self, pool: ConnectionPool, agents: AgentClients, placement: Placement | None = None,
                 no_answer: Callable[[str], None] | None = None) -> None:
        """`no_answer(why)`: a start or stop ended without the host's answer; the guest may run or not, whatever
        the record says (VM reconciliation, service/reconcile.py, asks the hosts)."""
        self._pool = pool
        self._calls = VmAgentCalls(pool, agents)
        self._placement = placement or Placement(pool)   # the scheduler (service/placement.py)
        self._no_answer = no_answer or (lambda why: None)

    def start(self, name: str, *, host: str = "", paused: bool = False) -> VmView:
        """Define and start the VM on a host; store the PCI addresses and devices the host reports."""
        with self._calls.change(f"starting VM {name}"):
            return self._start(name, host, paused)

    def _start(self, name: str, host: str, paused: bool) -> VmView:
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {name} is already running on {vm.host}")
            refuse_busy(vm)
            target = self._pick_host(conn, vm, host)
            nics = vnic_store.vm_vnics(conn, vm.id)
            networks = vnic_store.network_refs(conn, vm.datacenter)
            profiles = profile_store.vm_profiles(conn, vm.id)
            spec = vm_spec(vm, [agent_vnic_on(n, networks, profiles.get(n.name)) for n in nics])
            token = store.claim(conn, vm.id)
        try:
            status = self._define_and_start(target, spec, nics, paused)
        except BaseException as err:
            self._calls.release(vm.id, token)
            self._unanswered(err, f"start of VM {name} on {target.name}")
            raise
        # the generations read with the spec, not the profiles' now: an edit meanwhile shows as out of sync
        applied = {name: p.generation for name, p in profiles.items()}
        failpoints.hit("vm.start.after_agent")   # crash tests: the guest runs, the record does not say so yet
        if not self._record_start(vm.id, token, target, status, applied):
            self._undo_start(target, vm.name)
            raise Aborted(f"VM {name} changed while it was being started on {target.name} (deleted, or taken over "
                          f"after its claim expired); it was stopped there again")
        log.info("started VM %s on %s", name, target.name)
        return read_vm_view(self._pool, name)

    def _define_and_start(self, host: HostRef, spec: vm_pb2.VmSpec, nics: Sequence[Vnic],
                          paused: bool) -> vm_pb2.VmStatus:
        try:
            self._calls.call(host, lambda s, t: s.DefineVm(vm_pb2.DefineVmRequest(spec=spec), timeout=t))
        except InvalidArgument as err:
            raise spec_violation(err, nics) from None
        except (DeadlineExceeded, Unavailable):   # no answer: it may be defined
            self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=spec.name),
                                                                      timeout=t))
            raise
        try:
            return self._calls.call(host, lambda s, t: s.StartVm(vm_pb2.StartVmRequest(name=spec.name, paused=paused),
                                                           timeout=t))
        except VirtfleetError as err:
            if isinstance(err, (DeadlineExceeded, Unavailable)):   # no answer: the guest may be running
                self._calls.quietly(host, "destroy", lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=spec.name),
                                                                        timeout=t))
            self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=spec.name),
                                                                      timeout=t))
            if isinstance(err, InvalidArgument):   # e.g. a boot file the host lacks: named as the admin's field
                raise spec_violation(err, nics) from None
            raise

    def _record_start(self, vm_id: int, token: uuid.UUID, host: HostRef, status: vm_pb2.VmStatus,
                      applied: dict[str, int]) -> bool:
        """Up on `host` if the VM is still ours to start; False when it changed (or the host went) meanwhile.

        `applied`: the profile generation each vNIC was started with.
        """
        try:
            with self._pool.connection() as conn, conn.transaction():
                if not store.finish_start(conn, vm_id, token, host.id):
                    return False
                vnic_store.store_runtime(conn, vm_id, runtime(status))
                vnic_store.record_applied(conn, vm_id, applied)
                return True
        except psycopg.errors.ForeignKeyViolation:   # the host was deleted meanwhile
            return False

    def _unanswered(self, err: BaseException, what: str) -> None:
        if isinstance(err, (DeadlineExceeded, Unavailable)):
            self._no_answer(f"no answer to the {what}")

    def _undo_start(self, host: HostRef, vm: str) -> None:
        self._calls.quietly(host, "destroy", lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=vm), timeout=t))
        self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=vm), timeout=t))

    def _pick_host(self, conn: psycopg.Connection, vm: VmRecord, host: str) -> HostRef:
        """The named host if the scheduler accepts it (else all its reasons), or the scheduler's best."""
        return self._placement.host_for_start(conn, vm, host)

    def guest_interfaces(self, vm: VmRecord) -> list[GuestInterface] | None:
        """What the running VM's guest calls its NICs, through its host's agent; None when not known.

        Not knowing is normal (no OS yet, no guest agent in it, an agent that predates the
        call, a slow host): it is logged, never raised, and bounded to a few seconds so a
        `vm show` stays quick whatever the guest does.
        """
        host = vm.placement
        if host is None:
            return None
        request = vm_pb2.GetGuestInterfacesRequest(vm=vm.name, timeout_s=GUEST_AGENT_WAIT_S)
        try:
            reply = self._calls.call(host, lambda s, t: s.GetGuestInterfaces(request, timeout=min(t, GUEST_CALL_CAP_S)))
        except VirtfleetError as err:
            log.debug("guest interfaces of VM %s on %s not known: %s", vm.name, host.name, err.message)
            return None
        if not reply.agent_connected:
            return None
        return [GuestInterface(i.name, i.mac, tuple(i.addresses)) for i in reply.interfaces]

    def stop(self, name: str, *, force: bool = False, timeout_s: int = 0) -> VmView:
        """Shut the guest down (destroyed after `timeout_s`, at most rules.MAX_STOP_TIMEOUT_S), or destroy it."""
        wait = rules.stop_timeout(timeout_s)
        with self._calls.change(f"stopping VM {name}"):
            return self._stop(name, force, wait)

    def _stop(self, name: str, force: bool, wait: int) -> VmView:
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
                self._calls.call(host, lambda s, t: s.StopVm(vm_pb2.StopVmRequest(name=name, timeout_s=wait),
                                                       timeout=t), extra_s=wait)
        except BaseException as err:
            self._calls.release(vm.id, token)
            self._unanswered(err, f"stop of VM {name} on {host.name}")
            raise
        self._calls.quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=name), timeout=t))
        with self._pool.connection() as conn, conn.transaction():
            if not store.finish_stop(conn, vm.id, host.id):
                log.warning("VM %s was stopped on %s but is no longer recorded there", name, vm.host)
            forget_unplugging(conn, vm.id, vm.cluster_id)   # its guest holds no device now
        return read_vm_view(self._pool, name)
