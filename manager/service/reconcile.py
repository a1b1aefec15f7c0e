"""VMs reconciled with what hosts run: a pass asks every reachable host, judges, and settles by rule.

When a pass runs:
- a host's state stream comes up: the first time after the manager started (a
  manager SIGKILLed between an agent's start and its record left them
  disagreeing), after its agent restarted (a new epoch: its domains may be
  gone), or back after being silent past the unreachable limit;
- a VM start or stop ended without an answer (vm_runtime.py): the guest may run
  or not, whatever the record says;
- the audit runs (`virtfleet audit`, and its periodic round): what no rule
  settles is its `vm-state` findings.

A pass lists each reachable host's domains (ListVms, no transaction open), reads
the record, and lets domain/vmstate.py give each VM one verdict. Only the
record is ever changed here, never a host: ADOPT and ADOPT_MOVED record the VM
up where it runs (with the PCI addresses and devices a fresh GetVm reports, as a
start records them), MARK_DOWN records it down as a stop does. Each write is
checked first against a fresh GetVm of the hosts concerned, then made under the
VM's row lock only if the row is still the one the pass judged
(store/vmstate.py): a start, stop or migration that began or ended meanwhile
makes it step aside, to be judged by the next pass. Every write is an event of
the audit trail and a log line.

An agent without a VM runtime (UNIMPLEMENTED: the fleet simulator) is not asked
again until it restarts (its stream's epoch changes).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from virtfleet.errors import NotFound, Unimplemented, VirtfleetError
from virtfleet.macaddr import canonical
from virtfleet.v1 import agent_pb2, vm_pb2

from ..agents import AgentClients, HostMonitor
from ..agents.states import HostState
from ..domain.vmstate import HostDomains, RecordedVm, Rule, Verdict, claim_window_s, decide, is_running, same_guest
from ..store import vms as vm_store
from ..store import vmstate as store
from ..store import vnics as vnic_store
from ..store.vmstate import AnswerableHost, VmStateRow
from .events import RecordSystem, no_record_system
from .vmobjects import forget_unplugging
from .vnic_messages import runtime

log = logging.getLogger(__name__)

LIST_TIMEOUT_S = 10.0      # one host's ListVms or GetVm: a slow host is "not answered", never a stalled pass
LISTING_WORKERS = 8        # hosts asked at once


@dataclass(frozen=True)
class PassReport:
    """One pass: every verdict (after settling), which were written, which hosts answered."""

    verdicts: list[Verdict]
    applied: list[Verdict] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    @property
    def reported(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.rule.reported]


class VmReconciler:
    def __init__(self, pool: ConnectionPool, agents: AgentClients, monitor: HostMonitor | None = None,
                 record_system: RecordSystem = no_record_system) -> None:
        self._pool, self._agents, self._monitor = pool, agents, monitor
        self._record_system = record_system
        self._started_mono = time.monotonic()   # claims older than this manager were made by one that died
        self._pass_lock = threading.Lock()
        self._cond = threading.Condition()
        self._wanted: list[str] = []             # why passes were asked for since the last one
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._seen: dict[str, tuple[str, float]] = {}        # host → (epoch, monotonic) of its last event
        self._no_vm_service: dict[str, str] = {}             # host → epoch of an agent without a VM runtime
        if monitor is not None:
            monitor.add_listener(self._heard)

    # -- when -------------------------------------------------------------------------

    def start(self) -> None:
        """Run asked-for passes on a thread of their own (those asked before now included)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vm-reconcile", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30)

    def request(self, why: str) -> None:
        """A pass soon, on the reconciler's thread; asks made while one runs make one more, not one each."""
        with self._cond:
            self._wanted.append(why)
            self._cond.notify_all()

    def _heard(self, state: HostState, event: agent_pb2.NetworkStateEvent) -> None:
        """On the monitor's loop (must be quick): a stream that came up asks for a pass."""
        before = self._seen.get(state.name)
        self._seen[state.name] = (state.epoch, state.reported_mono)
        limit = self._monitor.unreachable_after_s if self._monitor is not None else 30.0
        if before is None:
            self.request(f"host {state.name} connected")
        elif before[0] != state.epoch:
            self.request(f"host {state.name}'s agent restarted")
        elif state.reported_mono - before[1] > limit:
            self.request(f"host {state.name} is back")
        elif event.HasField("state"):
            self.request(f"host {state.name}'s stream started over")

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                reasons, self._wanted = sorted(set(self._wanted)), []
            try:
                self.settle("; ".join(reasons[:3]) + (f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""))
            except Exception:  # a failed pass must not end the thread; the next ask runs another
                log.exception("reconciling VMs with their hosts failed")

    # -- one pass ---------------------------------------------------------------------

    def settle(self, why: str = "asked") -> PassReport:
        """Ask every reachable host, judge each VM, settle what a rule settles; one pass at a time."""
        with self._pass_lock:
            hosts = self._askable()
            listed = self._list(hosts)
            if not listed:
                return PassReport([])
            answered = [HostDomains(h.name, h.cluster_id, frozenset(s.name for s in statuses if is_running(s.state)))
                        for h, statuses in listed]
            running = sorted({name for a in answered for name in a.running})
            with self._pool.connection() as conn:
                rows = {r.name: r for r in store.rows(conn, running, [h.id for h, _ in listed])}
            window = claim_window_s(store.CLAIM_LIFETIME_S, time.monotonic() - self._started_mono)
            verdicts = decide([_recorded(r) for r in rows.values()], answered, live_claim_s=window)
            by_name = {h.name: h for h, _ in listed}
            settled, applied = [], []
            for v in verdicts:
                if v.rule.changes_record:
                    v, done = self._settle(v, rows[v.vm], by_name)
                    if done:
                        applied.append(v)
                settled.append(v)
            if applied or any(v.rule.reported for v in settled):
                log.info("VM reconciliation (%s): %d hosts answered, %d VMs settled, %d reported", why,
                         len(listed), len(applied), sum(v.rule.reported for v in settled))
            return PassReport(settled, applied, sorted(by_name))

    def audit_verdicts(self) -> list[Verdict]:
        """For the audit (service/audit.py): a pass now; what no rule settled is its `vm-state` findings."""
        return self.settle("the audit").reported

    def no_vm_service(self, host: str) -> None:
        """Another part learnt the host's agent has no VM runtime (service/hostmemory.py got UNIMPLEMENTED over
        the stream's own channel): not asked until its agent restarts, so a fleet of simulated hosts costs no
        second TLS connection each (a ListVms would open one)."""
        held = self._monitor.current(host) if self._monitor is not None else None
        if held is not None:
            self._no_vm_service[host] = held.epoch

    def _askable(self) -> list[AnswerableHost]:
        with self._pool.connection() as conn:
            hosts = store.answerable_hosts(conn)
        if self._monitor is None:
            return hosts
        askable = []
        for h in hosts:
            held = self._monitor.current(h.name)
            if held is None or not held.reachable:
                continue   # never reported, or silent: its VMs are not judged
            if self._no_vm_service.get(h.name) == held.epoch:
                continue
            askable.append(h)
        return askable

    def _list(self, hosts: list[AnswerableHost]) -> list[tuple[AnswerableHost, list[vm_pb2.VmStatus]]]:
        """The hosts that answered, with their domains; a host that did not is left out (not judged)."""
        if not hosts:
            return []
        with futures.ThreadPoolExecutor(min(LISTING_WORKERS, len(hosts)), thread_name_prefix="vm-list") as pool:
            answers = list(pool.map(self._list_one, hosts))
        return [(h, statuses) for h, statuses in zip(hosts, answers) if statuses is not None]

    def _list_one(self, host: AnswerableHost) -> list[vm_pb2.VmStatus] | None:
        try:
            reply = self._agents.call_vm(host.name, host.endpoint, lambda s, t: s.ListVms(
                vm_pb2.ListVmsRequest(), timeout=min(t, LIST_TIMEOUT_S)), for_caller=False)
        except Unimplemented:
            held = self._monitor.current(host.name) if self._monitor is not None else None
            if held is not None:
                self._no_vm_service[host.name] = held.epoch
            return None
        except VirtfleetError as err:
            log.info("VM reconciliation: host %s did not answer (%s); its VMs are not judged", host.name, err.message)
            return None
        return list(reply.vms)

    # -- settling one VM --------------------------------------------------------------

    def _settle(self, v: Verdict, judged: VmStateRow, hosts: dict[str, AnswerableHost]) -> tuple[Verdict, bool]:
        """Write what the verdict says if the hosts still show it and the row is still the one judged."""
        try:
            status = self._now(hosts[v.host], v.vm)
            still_on_recorded = (v.rule is Rule.ADOPT_MOVED
                                 and _running(self._now(hosts[v.recorded_host], v.vm)))
        except VirtfleetError as err:
            return v, self._stepped_aside(v, f"a host did not answer ({err.message})")
        if v.rule is Rule.MARK_DOWN:
            if _running(status):
                return v, self._stepped_aside(v, f"{v.host} runs it again")
            return v, self._write(v, judged, lambda conn: _mark_down(conn, judged))
        if status is None or not _running(status) or still_on_recorded:
            return v, self._stepped_aside(v, "where it runs changed since the listing")
        with self._pool.connection() as conn:
            recorded_macs = store.vnic_macs(conn, judged.id)
        if not same_guest(recorded_macs, {n.name: _mac(n.mac) for n in status.nics if n.name}):
            log.warning("VM %s: the domain of that name on %s has other MACs than the VM: not adopted", v.vm, v.host)
            return Verdict(v.vm, Rule.NOT_ITS_GUEST, v.host, v.recorded_host, v.running_on), False
        host_id = hosts[v.host].id
        return v, self._write(v, judged, lambda conn: _record_up(conn, judged.id, host_id, status))

    def _write(self, v: Verdict, judged: VmStateRow, change: Callable) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            now = store.row(conn, judged.id, lock=True)
            if now is None or now.version != judged.version or now.migrating:
                return self._stepped_aside(v, "its record changed meanwhile (a start, stop or migration)")
            change(conn)
        action = "vm.marked_down" if v.rule is Rule.MARK_DOWN else "vm.adopted"
        log.warning("VM %s %s: %s", v.vm, "recorded down" if v.rule is Rule.MARK_DOWN else f"adopted on {v.host}",
                    v.reason)
        self._record_system(action, "vm", v.vm, {"rule": v.rule.value, "host": v.host,
                                                 "recorded_host": v.recorded_host}, v.reason)
        return True

    @staticmethod
    def _stepped_aside(v: Verdict, why: str) -> bool:
        log.info("VM %s not settled (%s): %s; the next pass judges it again", v.vm, v.rule.value, why)
        return False

    def _now(self, host: AnswerableHost, vm: str) -> vm_pb2.VmStatus | None:
        """The domain as the host has it now, None when it has none; raises when the host does not answer."""
        try:
            return self._agents.call_vm(host.name, host.endpoint, lambda s, t: s.GetVm(
                vm_pb2.GetVmRequest(name=vm), timeout=min(t, LIST_TIMEOUT_S)), for_caller=False)
        except NotFound:
            return None


def _recorded(r: VmStateRow) -> RecordedVm:
    return RecordedVm(r.name, r.cluster_id, r.state, r.host, r.claim_age_s, r.migrating)


def _running(status: vm_pb2.VmStatus | None) -> bool:
    return status is not None and is_running(status.state)


def _mac(text: str) -> str:
    try:
        return canonical(text)
    except ValueError:
        return text


def _mark_down(conn, judged: VmStateRow) -> None:
    """As a stop records it: down, no host devices, vNICs left unplugging gone."""
    vm_store.finish_stop(conn, judged.id, judged.host_id)
    forget_unplugging(conn, judged.id, judged.cluster_id)


def _record_up(conn, vm_id: int, host_id: int, status: vm_pb2.VmStatus) -> None:
    """As a start records it: up there, with the PCI addresses and devices the host reports."""
    store.record_up(conn, vm_id, host_id)
    vnic_store.store_runtime(conn, vm_id, runtime(status))
