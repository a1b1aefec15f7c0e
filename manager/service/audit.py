"""The audit as a service: gather inputs, run the pure engine, keep the latest result, fix where safe.

States come from the monitor's memory (current to the last delta), records
from PostgreSQL in a handful of datacenter-wide queries; the engine itself
touches nothing. It runs on demand and every `audit_interval_s`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound
from virtfleet.v1 import agent_pb2, fleet_pb2, hostnet_pb2

from ..agents import AgentClients, HostMonitor
from ..audit import CATEGORIES, Finding, audit, filter_findings
from ..audit.inputs import FleetInput, GuestNicInput, HostInput, NicOrderInput, ProfileSyncInput, VnicInput
from ..domain.guestnames import GuestNamed
from ..domain.vmstate import Verdict
from ..domain.vmorder import SourceNic
from ..domain.vnic import VnicKind
from ..store import audit as audit_store
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store import profiles as profile_store
from ..store.networks import AttachmentRecord, NetworkRecord
from .networks import NetworkService, agent_attachment, agent_bond

log = logging.getLogger(__name__)

FINDING_EVENTS_MAX = 50   # findings new (or resolved) in one run recorded one by one; beyond, one event says how many


@dataclass(frozen=True)
class AuditRun:
    findings: list[Finding]
    ran_at: dt.datetime
    duration_s: float
    hosts: int


@dataclass(frozen=True)
class FixResult:
    finding: Finding
    steps: list[str]
    applied: bool
    remaining: list[Finding]


def check_category(category: str) -> None:
    if category and category not in CATEGORIES:
        raise InvalidArgument("category", f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")


class AuditService:
    def __init__(self, pool: ConnectionPool, monitor: HostMonitor, networks: NetworkService, agents: AgentClients,
                 *, interval_s: float = 300.0, record_system: Callable[..., None] | None = None,
                 vm_state: Callable[[], list[Verdict]] | None = None) -> None:
        self._pool = pool
        self._vm_state = vm_state or (lambda: [])   # a VM reconciliation pass (reconcile.py): settles, then verdicts
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self._monitor = monitor
        self._networks = networks
        self._agents = agents
        self._interval_s = interval_s
        self._latest: AuditRun | None = None
        self._indexes: dict = {}   # per host, reused while its state object is unchanged (audit's cache)
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------

    def run(self) -> AuditRun:
        with self._run_lock:
            started = time.perf_counter()
            vms = self._settle_vms()   # first, and outside the pause-free part: it waits on agents
            with _no_gc_pauses():
                fleet = dataclasses.replace(self.gather(), vm_state=vms)
                findings = audit(fleet, self._indexes)
                result = AuditRun(findings, dt.datetime.now(dt.timezone.utc), time.perf_counter() - started,
                                  len(fleet.hosts))
                previous, self._latest = self._latest, result
                self._record_changes(previous.findings if previous else [], findings)
        log.info("audit of %d hosts: %d findings in %.2f s", result.hosts, len(findings), result.duration_s)
        return result

    def _settle_vms(self) -> list[Verdict]:
        """VMs reconciled with their hosts first; what no rule settled becomes `vm-state` findings."""
        try:
            return self._vm_state()
        except Exception:  # the rest of the audit stands without it
            log.exception("reconciling VMs with their hosts failed; no vm-state findings this run")
            return []

    def _record_changes(self, before: list[Finding], now: list[Finding]) -> None:
        """Findings that appeared or went since the last run, as system events (the first FINDING_EVENTS_MAX each)."""
        old, new = {f.id: f for f in before}, {f.id: f for f in now}
        for action, gone_or_new in (("audit.finding_new", [f for i, f in new.items() if i not in old]),
                                    ("audit.finding_resolved", [f for i, f in old.items() if i not in new])):
            for f in gone_or_new[:FINDING_EVENTS_MAX]:
                self._record_system(action, "host" if f.host else "finding", f.host or f.id,
                                    {"id": f.id, "category": f.category, "severity": f.severity.value,
                                     "object": f.object, "expected": f.expected, "found": f.found},
                                    f"{f.category}: {f.object}")
            if len(gone_or_new) > FINDING_EVENTS_MAX:
                self._record_system(action, "", "", {"more": len(gone_or_new) - FINDING_EVENTS_MAX},
                                    f"and {len(gone_or_new) - FINDING_EVENTS_MAX} more")

    def latest(self) -> AuditRun:
        return self._latest or self.run()

    def start_periodic(self) -> None:
        if self._interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._periodically, name="audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _periodically(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.run()
            except Exception:  # a failed round must not end the periodic audit
                log.exception("periodic audit failed")

    # -- inputs ----------------------------------------------------------------------

    def gather(self) -> FleetInput:
        with self._pool.connection() as conn:
            hosts = host_store.list_hosts(conn)
            desired = audit_store.desired_attachments(conn)
            vnic_rows = audit_store.vnics(conn)
            allocated = audit_store.allocated_macs(conn)
            orders = audit_store.nic_orders(conn)
            out_of_sync = profile_store.out_of_sync(conn)
            guest_rows = audit_store.guest_nics(conn)
        held = self._monitor.snapshot()
        now = time.monotonic()
        wall = dt.datetime.now(dt.timezone.utc)
        inputs = []
        for h in hosts:
            current = held.get(h.name)
            if current is not None:
                state, reachable, silent = current.state, current.reachable, now - current.reported_mono
            else:
                state, reachable = None, False
                silent = (wall - h.last_report_at).total_seconds() if h.last_report_at else None
            inputs.append(HostInput(h.name, h.address, state, reachable, silent,
                                    [desired_attachment(d) for d in desired.get(h.name, [])]))
        vnics = [VnicInput(vm, name, mac, VnicKind(kind), *rest) for vm, name, mac, kind, *rest in vnic_rows]
        nic_orders = [NicOrderInput(o.vm, o.source_kind, o.source_name, [SourceNic(*n) for n in o.source],
                                    [SourceNic(*n) for n in o.nics]) for o in orders]
        guests = [GuestNicInput(g.vm, g.source_kind, g.source_name, [GuestNamed(*n) for n in g.source],
                                [GuestNamed(*n) for n in g.nics]) for g in guest_rows]
        return FleetInput(inputs, vnics, allocated, nic_orders, self._monitor.unreachable_after_s,
                          profile_sync=[ProfileSyncInput(*o) for o in out_of_sync], guest_nics=guests)

    # -- fixing ----------------------------------------------------------------------

    def fix(self, finding_id: str, *, plan: bool) -> FixResult:
        if not finding_id.strip():
            raise InvalidArgument("id", "a finding id is required (see `virtfleet audit`)")
        finding = next((f for f in self.run().findings if f.id == finding_id.strip()), None)
        if finding is None:
            raise NotFound(f"no open finding with id {finding_id!r}; it may be fixed already (run `virtfleet audit`)")
        if not finding.fixable:
            raise FailedPrecondition(f"finding {finding.id} ({finding.category}) has no safe automatic fix: "
                                     f"{finding.fix}")
        attach, bonds = self._desired_setup(finding.host)
        result = self._networks.setup_host(finding.host, attach=attach, detach=[], bonds=bonds, remove_bonds=[],
                                           plan=plan, connectivity_timeout_s=0)
        remaining: list[Finding] = []
        if result.applied:
            remaining = self._host_findings_now(finding.host)
            log.info("fixed finding %s on %s; %d findings left on the host", finding.id, finding.host, len(remaining))
        return FixResult(finding, result.steps, result.applied, remaining)

    def _desired_setup(self, host_name: str) -> tuple[list[fleet_pb2.HostAttachment], list[hostnet_pb2.Bond]]:
        with self._pool.connection() as conn:
            host = host_store.get_host(conn, host_name)
            attachments = net_store.attachments(conn, host.id)
            bonds = net_store.bonds(conn, host.id)
        attach = [fleet_pb2.HostAttachment(
            network=a.network, nic=a.nic, default_route=a.default_route,
            ipv4=hostnet_pb2.Ipv4Config(method=a.ipv4_method, address=a.ipv4_address or "",
                                        prefixlen=a.ipv4_prefixlen or 0, gateway=a.ipv4_gateway or ""))
            for a in attachments]
        return attach, [agent_bond(b) for b in bonds]

    def _host_findings_now(self, host_name: str) -> list[Finding]:
        """The host's findings against a state read now, not the monitor's (which lags by a delta)."""
        host = host_store_get(self._pool, host_name)
        state = self._agents.call(host.name, host.endpoint, lambda stub, t: stub.GetNetworkState(
            agent_pb2.GetNetworkStateRequest(), timeout=t))
        fleet = self.gather()
        hosts = [HostInput(h.name, h.address, state, True, 0.0, h.desired) if h.name == host_name else h
                 for h in fleet.hosts]
        fixed = FleetInput(hosts, fleet.vnics, fleet.allocated_macs, fleet.nic_orders, fleet.unreachable_after_s)
        return filter_findings(audit(fixed), host=host_name)


@contextlib.contextmanager
def _no_gc_pauses():
    """An audit allocates a few hundred thousand short-lived objects next to a large live heap of
    host states; the cyclic collector would walk that heap again and again (measured: half the
    cycle). Nothing here makes cycles, so reference counting frees it all."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def desired_attachment(d: audit_store.DesiredAttachment) -> hostnet_pb2.NetworkAttachment:
    """The same translation the network service sends to agents, so both judge alike."""
    net = NetworkRecord(0, d.network, "", d.vlan, d.mtu, d.vm_network, "")
    att = AttachmentRecord(d.network, d.nic, d.ipv4_method, d.ipv4_address, d.ipv4_prefixlen, d.ipv4_gateway,
                           d.default_route)
    return agent_attachment(net, att)


def host_store_get(pool: ConnectionPool, name: str):
    with pool.connection() as conn:
        return host_store.get_host(conn, name)

