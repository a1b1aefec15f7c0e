"""The scheduler as a service: gather a VM's needs and its cluster's host facts, let the pure scheduler judge.

The decision is manager/domain/placement.py's; this module only reads. Host networks
come from the monitor's memory (current to the last delta) and, for a host the monitor
does not hold (the manager just started, a host not followed), from its last stored
report — the same sources `host networks` and the audit judge "in sync" from. Records
(status, maintenance, memory, the VMs on each host and their direct vNICs) come from
PostgreSQL in a handful of queries, in the caller's transaction when it passes one
(`vm start` judges under the VM's row lock, and calls no agent while it holds it).

Others build on three calls: `explain` (every host with its verdict), `choose` (the
best host, or FAILED_PRECONDITION naming every host's reasons) and `check` (why one
named host is refused). `migration_address` (service/migrationnet.py) is re-exported
here: the migration service asks both where a VM goes and where its memory is sent.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import psycopg
from google.protobuf.json_format import ParseDict
from psycopg_pool import ConnectionPool

from virtfleet import rules
from virtfleet.errors import FailedPrecondition, NotFound
from virtfleet.v1 import hostnet_pb2, netstate_pb2

from ..agents import HostMonitor
from ..domain.hostinput import check_host_name
from ..domain.placement import (DirectNeed, DirectUse, Explanation, HostFacts, Policy, Purpose, VmNeeds, place,
                                purpose_of)
from ..domain.vnic import DirectMode, VnicKind
from ..store import hosts as host_store
from ..store import placement as placement_store
from ..store import profiles as profile_store
from ..store import vms as vm_store
from ..store import vnics as vnic_store
from ..store.vms import HostRef, VmRecord
from .migrationnet import migration_address  # noqa: F401 - re-exported for the migration service
from .networks import agent_attachment

log = logging.getLogger(__name__)

Offers = Callable[[str], tuple[frozenset[str] | None, frozenset[str] | None]]


class Placement:
    def __init__(self, pool: ConnectionPool, monitor: HostMonitor | None = None, *,
                 memory_overcommit_percent: float = 100.0, offers: Offers | None = None) -> None:
        """`offers(host)`: the libvirt networks and network filters the host's agent last said it has
        (service/hostmemory.py); without it, or where a host has not said, they are noted, not checked."""
        self._pool = pool
        self._monitor = monitor
        self._policy = Policy(memory_overcommit_percent)
        self._offers = offers or (lambda host: (None, None))

    # -- for the API and the other services ------------------------------------------------------

    def explain(self, vm_name: str, purpose: str = "start", *,
                exclude: frozenset[str] = frozenset()) -> Explanation:
        """Every host of the VM's cluster with its verdict; changes nothing."""
        why = purpose_of(purpose)
        with self._pool.connection() as conn:
            vm = _get_vm(conn, vm_name)
            return self.explain_in(conn, vm, why, exclude=exclude)

    def choose(self, vm_name: str, purpose: str = "start", *, exclude: frozenset[str] = frozenset()) -> str:
        """The best host's name; FAILED_PRECONDITION listing every host's reasons when none fits."""
        explanation = self.explain(vm_name, purpose, exclude=exclude)
        if not explanation.chosen:
            raise FailedPrecondition(explanation.refusal())
        return explanation.chosen

    def check(self, vm_name: str, host: str, purpose: str = "migrate") -> list[str]:
        """Every reason `host` is refused for the VM ([] when it fits); NotFound for an unknown host."""
        why = purpose_of(purpose)
        check_host_name(host, "host")
        with self._pool.connection() as conn:
            vm = _get_vm(conn, vm_name)
            return self.check_in(conn, vm, host, why)

    # -- inside a caller's transaction -----------------------------------------------------------

    def explain_in(self, conn: psycopg.Connection, vm: VmRecord, purpose: Purpose, *,
                   exclude: frozenset[str] = frozenset()) -> Explanation:
        needs = vm_needs(conn, vm)
        rows = placement_store.hosts(conn, vm.id, cluster_id=vm.cluster_id)
        return place(needs, self._facts(conn, vm, needs, rows), purpose, exclude=exclude, policy=self._policy)

    def check_in(self, conn: psycopg.Connection, vm: VmRecord, host: str, purpose: Purpose) -> list[str]:
        needs = vm_needs(conn, vm)
        rows = placement_store.hosts(conn, vm.id, names=[host])
        if not rows:
            raise NotFound(f"host {host!r} does not exist (host)")
        verdict = place(needs, self._facts(conn, vm, needs, rows), purpose, policy=self._policy).verdicts[0]
        return list(verdict.reasons)

    def host_for_start(self, conn: psycopg.Connection, vm: VmRecord, host: str) -> HostRef:
        """`vm start`'s host: the named one if it fits (else every reason, FAILED_PRECONDITION), or the best."""
        if host:
            try:
                reasons = self.check_in(conn, vm, host, Purpose.START)
            except NotFound:
                raise FailedPrecondition(f"host {host!r} is not up in cluster {vm.cluster}: it does not exist") \
                    from None
            if reasons:
                raise FailedPrecondition(f"host {host} cannot start VM {vm.name}: {'; '.join(reasons)}")
            chosen = host
        else:
            explanation = self.explain_in(conn, vm, Purpose.START)
            if not explanation.chosen:
                raise FailedPrecondition(explanation.refusal())
            chosen = explanation.chosen
        record = host_store.get_host(conn, chosen)
        return HostRef(record.id, record.name, record.endpoint)

    # -- facts -----------------------------------------------------------------------------------

    def _facts(self, conn: psycopg.Connection, vm: VmRecord, needs: VmNeeds,
               rows: list[placement_store.PlacementHost]) -> list[HostFacts]:
        ids = [r.id for r in rows]
        uses: dict[int, list[DirectUse]] = {}
        if needs.direct:
            for u in placement_store.direct_uses(conn, vm.id, ids):
                uses.setdefault(u.host_id, []).append(DirectUse(u.vm, u.parent, u.mode))
        atts: dict[int, dict[str, hostnet_pb2.NetworkAttachment]] = {}
        for a in placement_store.attachments(conn, ids, sorted(set(needs.bridged))):
            atts.setdefault(a.host_id, {})[a.network.name] = agent_attachment(a.network, a.attachment)
        wants_state = bool(needs.bridged or needs.direct)
        offers = {r.name: self._offers(r.name) for r in rows} if needs.virtual_networks or needs.filters else {}
        return [HostFacts(
            name=r.name, cluster=r.cluster, status=r.status, status_reason=r.status_reason,
            maintenance=r.maintenance, state=self._state(conn, r.name) if wants_state else None,
            attachments=atts.get(r.id, {}), direct_uses=tuple(uses.get(r.id, ())),
            memory_total_mib=r.memory_total_mib, vms_memory_mib=r.vms_memory_mib, vm_count=r.vm_count,
            virtual_networks=offers.get(r.name, (None, None))[0], network_filters=offers.get(r.name, (None, None))[1])
            for r in rows]

    def _state(self, conn: psycopg.Connection, host: str) -> netstate_pb2.NetworkState | None:
        """The host's network now: the monitor's, else its last stored report; None when it never reported."""
        held = self._monitor.current(host) if self._monitor is not None else None
        if held is not None:
            return held.state
        report = host_store.get_report(conn, host)
        if report is None:
            return None
        return ParseDict(report.state, netstate_pb2.NetworkState(), ignore_unknown_fields=True)


def vm_needs(conn: psycopg.Connection, vm: VmRecord) -> VmNeeds:
    """What the VM asks of a host: its vNICs' networks and host NICs, its profiles' filters, its memory."""
    nics = vnic_store.vm_vnics(conn, vm.id)
    profiles = profile_store.vm_profiles(conn, vm.id)
    return VmNeeds(
        name=vm.name, cluster=vm.cluster, memory_mib=vm.memory_mib, host=vm.host if vm.state == "up" else None,
        bridged=_unique(n.network for n in nics if n.kind is VnicKind.BRIDGE and n.network),
        direct=tuple(DirectNeed(n.name, n.direct_nic, n.direct_mode is DirectMode.PASSTHROUGH)
                     for n in nics if n.kind is VnicKind.DIRECT and n.direct_nic),
        virtual_networks=_unique(n.virtual_network for n in nics
                                 if n.kind is VnicKind.VIRTUAL_NETWORK and n.virtual_network),
        filters=_unique(p.settings.filter_name for name, p in profiles.items()
                        if p.settings.filter_name and _kind_of(nics, name) is VnicKind.BRIDGE))


def _kind_of(nics, name: str) -> VnicKind | None:
    return next((n.kind for n in nics if n.name == name), None)


def _unique(names: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({n for n in names if n}))


def _get_vm(conn: psycopg.Connection, name: str) -> VmRecord:
    rules.vm_name(name, "vm")
    try:
        return vm_store.get_vm(conn, name)
    except NotFound:
        raise NotFound(f"VM {name!r} does not exist (vm)") from None
