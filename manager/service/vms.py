"""VMs: made directly or from a template or snapshot (seed 004's rules, domain/vmorder.py), deleted, and checked
against their source's vNIC order. Running them is vm_runtime.py; their vNICs, vnics.py.

Every change to the database is one transaction, and MACs come from the cluster's
pool inside it (manager/service/macpools.py), so bad input, an exhausted pool or a
killed manager leaves no half-made VM and no MAC taken. Bulk creation commits one
transaction per batch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Iterator, Mapping, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import failpoints, rules
from virtfleet.errors import AlreadyExists, FailedPrecondition, InvalidArgument

from ..domain import vmorder
from ..domain.boot import DISKLESS, BootSource, DomainType, check_boot
from ..domain.guestnames import GuestNamed, guest_name_mismatches, known, match_by_mac
from ..domain.vmorder import Rule, SourceKind, guest_order, source_guest_order, source_nic
from ..domain.vnic import Vnic, check_vnics
from ..store import guestnames as guest_store
from ..store import networks as net_store
from ..store import profiles as profile_store
from ..store import snapshots as snapshot_store
from ..store import templates as template_store
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import VmRecord
from ..store.vnics import NetworkRef
from . import macpools
from .vm_calls import refuse_busy
from .vm_runtime import VmRuntime
from .vmobjects import (DEFAULT_MEMORY_MIB, VmView, allocate_macs, attached_network_id, check_in_cluster,
                        check_source_networks, placed, vm_view, with_profile)

log = logging.getLogger(__name__)

DEFAULT_CLUSTER = "Default"
DEFAULT_BATCH = 100
MAX_BULK = 100_000


@dataclass(frozen=True)
class BulkProgress:
    total: int
    created: int
    started: int
    vms: list[str]
    rule: Rule


@dataclass(frozen=True)
class OrderReport:
    vm: VmRecord
    rule: Rule
    expected: list[Vnic]
    actual: list[Vnic]
    mismatches: list[vmorder.Mismatch]
    # with `guest`: vNIC name → guest name, the source VM's guest's and this VM's (live, else last seen)
    expected_guest: dict[str, str] = field(default_factory=dict)
    actual_guest: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VmSource:
    """The template or snapshot a VM is made from, with the seed-004 rule its vNICs follow."""

    kind: SourceKind
    name: str
    template_id: int | None
    snapshot_id: int | None
    memory_mib: int
    vcpus: int
    nics: list[Vnic]
    rule: Rule
    boot: BootSource
    domain_type: DomainType


def bulk_names(name: str, count: int) -> list[str]:
    """NAME-1 … NAME-count, each a valid VM name."""
    rules.vm_name(name, "name")
    if not 1 <= count <= MAX_BULK:
        raise InvalidArgument("count", f"between 1 and {MAX_BULK}")
    names = [f"{name}-{i}" for i in range(1, count + 1)]
    rules.vm_name(names[-1], "name")
    return names


def planned_vnics(src: VmSource, macs: Sequence[str]) -> list[Vnic]:
    """A new VM's vNICs from its source: seed 004 decides positions, MACs and kept PCI addresses."""
    plan = vmorder.plan_new_vm(src.kind, [source_nic(v) for v in src.nics], macs)
    by_name = {v.name: v for v in src.nics}
    return [replace(by_name[p.source.name], position=p.position, mac=p.mac, host_device=None) for p in plan.nics]


def _refuse_foreign(sources: Sequence[tuple[str, str | None, str | None]], src: VmSource) -> None:
    """A resumed run keeps only VMs that an earlier run of it made: from the same template or snapshot."""
    for vm, kind, source in sources:
        if (kind, source) != (src.kind.value, src.name):
            made = f"{kind} {source}" if kind else "directly"
            raise AlreadyExists(f"VM {vm!r} exists but was made {'from ' if kind else ''}{made}, not from "
                                f"{src.kind.value} {src.name}: it is not part of this run; pick another name")


def _only(networks: Mapping[str, NetworkRef], names: frozenset[str]) -> dict[str, NetworkRef]:
    """The networks among `names` (those attached to the VM's cluster)."""
    return {name: ref for name, ref in networks.items() if name in names}


def _with_profiles(src: VmSource, profiles) -> VmSource:
    """The source's vNICs with their profiles named (a template from before profiles names only networks)."""
    return replace(src, nics=[with_profile(v, profiles, f"nics[{i}]") for i, v in enumerate(src.nics)])


class VmService:
    def __init__(self, pool: ConnectionPool, runtime: VmRuntime) -> None:
        self._pool = pool
        self._runtime = runtime

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> VmView:
        """The VM; a running one's guest is asked what it calls its NICs (see `_with_guest`)."""
        with self._pool.connection() as conn:
            view = vm_view(conn, name)
        return self._with_guest(view)

    def _with_guest(self, view: VmView) -> VmView:
        """A running VM's guest names and addresses, asked of its guest agent now and kept as last seen.

        No connection is held across the agent call. When the guest cannot say (no guest
        agent, an old host agent, a timeout) the view keeps the last-seen names: never an error.
        """
        interfaces = self._runtime.guest_interfaces(view.vm)
        if interfaces is None:
            return view
        live = [n for n in view.nics if not n.unplugging]
        seen = match_by_mac({n.name: n.mac for n in live}, interfaces)
        try:
            with self._pool.connection() as conn, conn.transaction():
                guest_store.store_seen(conn, view.vm.id, seen)
        except psycopg.Error:
            log.exception("could not record the guest names of VM %s", view.vm.name)
        return replace(view, guest=seen, guest_live=True)

    def list(self) -> list[VmView]:
        """Guest names as last seen: a list asks no guest."""
        with self._pool.connection() as conn:
            vms = store.list_vms(conn)
            nics = vnic_store.vnics_by_vm(conn)
            guests = guest_store.guest_nics_by_vm(conn)
        return [VmView(vm, guest_order(nics.get(vm.id, [])), guests.get(vm.id, {})) for vm in vms]

    # -- creating --------------------------------------------------------------------------------

    def create(self, *, name: str, cluster: str = "", template: str = "", snapshot: str = "", memory_mib: int = 0,
               vcpus: int = 0, nics: Sequence[Vnic] = (), start: bool = False, host: str = "",
               boot: BootSource | None = None, domain_type: DomainType | None = None) -> VmView:
        """`boot` and `domain_type` default to the source's (template, snapshot), else diskless and auto."""
        rules.vm_name(name, "name")
        boot = check_boot(boot)
        rules.vm_resources(memory_mib, vcpus, len(nics))
        if template and snapshot:
            raise InvalidArgument("snapshot", "give a template or a snapshot, not both")
        if (template or snapshot) and nics:
            raise InvalidArgument("nics", "the vNICs come from the template or snapshot")
        checked = check_vnics(nics)
        with self._pool.connection() as conn, conn.transaction():
            c = store.cluster(conn, cluster or DEFAULT_CLUSTER)
            networks = vnic_store.network_refs(conn, c.datacenter)
            profiles = profile_store.profile_refs(conn, c.datacenter)
            in_cluster = net_store.cluster_network_names(conn, c.id)
            if template or snapshot:
                src = self._source(conn, template, snapshot)
                check_source_networks(src.nics, _only(networks, in_cluster),
                                      f"cluster {cluster or DEFAULT_CLUSTER} lacks")
                src = _with_profiles(src, profiles)
                planned = planned_vnics(src, allocate_macs(conn, c.id, len(src.nics)))
                ids = store.insert_vms(conn, cluster_id=c.id, names=[name], memory_mib=memory_mib or src.memory_mib,
                                       vcpus=vcpus or src.vcpus, source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name, boot=boot or src.boot,
                                       domain_type=domain_type or src.domain_type)
            else:
                checked = [with_profile(n, profiles, f"nics[{i}]") for i, n in enumerate(checked)]
                for i, n in enumerate(checked):
                    attached_network_id(n, networks, f"nics[{i}].network")
                    check_in_cluster(n, in_cluster, cluster or DEFAULT_CLUSTER, f"nics[{i}].network")
                fresh = iter(allocate_macs(conn, c.id, sum(1 for n in checked if not n.mac)))
                planned = [replace(n, position=i, mac=macpools.claim_mac(conn, c.id, n.mac) if n.mac else next(fresh))
                           for i, n in enumerate(checked)]
                ids = store.insert_vms(conn, cluster_id=c.id, names=[name], memory_mib=memory_mib or DEFAULT_MEMORY_MIB,
                                       vcpus=vcpus or 1, source_kind=None, source_name=None, template_id=None,
                                       snapshot_id=None, nic_rule=None, boot=boot or DISKLESS,
                                       domain_type=domain_type or DomainType.AUTO)
            vnic_store.insert_vm_vnics(conn, (placed(ids[name], n, networks, profiles, "nics") for n in planned))
        log.info("created VM %s", name)
        if not start:
            return self.get(name)
        try:
            return self._runtime.start(name, host=host)
        except Exception:
            self._undo_create(name)
            raise

    def _undo_create(self, name: str) -> None:
        """A `create --start` whose start failed creates nothing: the VM and its MACs go again.

        The start was tried with no transaction open (it calls an agent), so what create
        committed is deleted here in one transaction; a failed start has left the VM down
        and unclaimed. Should even that fail, the VM stays (down) and the log says so.
        """
        try:
            macs = self.delete(name)
            log.info("start of new VM %s failed: deleted it again (released %d MACs)", name, len(macs))
        except Exception:
            log.exception("start of new VM %s failed, and deleting it again failed too; it stays, down", name)

    def create_many(self, *, name: str, count: int, cluster: str = "", template: str = "", snapshot: str = "",
                    batch_size: int = 0, start: bool = False, resume: bool = False) -> Iterator[BulkProgress]:
        """NAME-1 … NAME-count from one source: one transaction per batch, its MACs taken in one call.

        Everything that can be known up front (names free, source, networks, enough MACs) is checked
        before the first batch. A run cut off midway has committed whole batches only; `resume`
        continues it: the names that exist already, made from this same source, count as created.
        """
        names = bulk_names(name, count)
        if not (template or snapshot):
            raise InvalidArgument("template", "bulk creation needs a template or a snapshot")
        if template and snapshot:
            raise InvalidArgument("snapshot", "give a template or a snapshot, not both")
        batch = batch_size or DEFAULT_BATCH
        if not 1 <= batch <= 10_000:
            raise InvalidArgument("batch_size", "between 1 and 10000")
        cluster = cluster or DEFAULT_CLUSTER
        with self._pool.connection() as conn, conn.transaction():
            c = store.cluster(conn, cluster)
            networks = vnic_store.network_refs(conn, c.datacenter)
            profiles = profile_store.profile_refs(conn, c.datacenter)
            src = self._source(conn, template, snapshot)
            check_source_networks(src.nics, _only(networks, net_store.cluster_network_names(conn, c.id)),
                                  f"cluster {cluster} lacks")
            src = _with_profiles(src, profiles)
            existing = store.existing_vm_names(conn, names)
            if existing and not resume:
                raise AlreadyExists(f"VM {existing[0]!r} already exists ({len(existing)} of the {count} names are "
                                    "taken); to continue a run that was cut off, repeat it with resume")
            if resume:
                _refuse_foreign(store.vm_sources(conn, existing), src)
            todo = [n for n in names if n not in set(existing)]
            # A probe rolled back at once: an exhausted pool is refused before any VM exists.
            with conn.transaction(force_rollback=True):
                allocate_macs(conn, c.id, len(todo) * len(src.nics))
        per_vm = len(src.nics)
        created: list[str] = []
        if existing:
            yield BulkProgress(count, len(existing), 0, [], src.rule)
        for first in range(0, len(todo), batch):
            chunk = todo[first:first + batch]
            failpoints.hit(f"vm_bulk_batch_{first // batch}")
            with self._pool.connection() as conn, conn.transaction():
                macs = allocate_macs(conn, c.id, len(chunk) * per_vm)
                ids = store.insert_vms(conn, cluster_id=c.id, names=chunk, memory_mib=src.memory_mib,
                                       vcpus=src.vcpus, source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name, boot=src.boot, domain_type=src.domain_type)
                vnic_store.insert_vm_vnics(conn, (
                    placed(ids[vm], n, networks, profiles, "nics")
                    for k, vm in enumerate(chunk)
                    for n in planned_vnics(src, macs[k * per_vm:(k + 1) * per_vm])))
            created.extend(chunk)
            yield BulkProgress(count, len(existing) + len(created), 0, chunk, src.rule)
        log.info("created %d VMs from %s %s", len(created), src.kind.value, src.name)
        if start:
            with self._pool.connection() as conn:
                down = set(store.down_vm_names(conn, names))
            for started, vm in enumerate((n for n in names if n in down), 1):
                self._runtime.start(vm)
                yield BulkProgress(count, count, started, [vm], src.rule)

    @staticmethod
    def _source(conn: psycopg.Connection, template: str, snapshot: str) -> VmSource:
        if template:
            t = template_store.get_template(conn, template)
            nics = vnic_store.source_vnics(conn, SourceKind.TEMPLATE, t.id)
            return VmSource(SourceKind.TEMPLATE, t.name, t.id, None, t.memory_mib, t.vcpus, nics,
                            vmorder.rule_for(SourceKind.TEMPLATE, [source_nic(v) for v in nics]), t.boot,
                            t.domain_type)
        s = snapshot_store.get_snapshot(conn, snapshot)
        nics = vnic_store.source_vnics(conn, SourceKind.SNAPSHOT, s.id)
        return VmSource(SourceKind.SNAPSHOT, s.name, None, s.id, s.memory_mib, s.vcpus, nics,
                        vmorder.rule_for(SourceKind.SNAPSHOT, [source_nic(v) for v in nics]), s.boot, s.domain_type)

    def delete(self, name: str) -> list[str]:
        """Delete a stopped VM (and its snapshots); its MACs go back to the pool."""
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {name} is running on {vm.host}; stop it first")
            refuse_busy(vm)
            macs = vnic_store.vm_macs(conn, vm.id)
            if macs:
                macpools.release_macs(conn, vm.cluster_id, macs)
            store.delete_vm(conn, vm.id)
        return macs

    # -- order check --------------------------------------------------------------------------------

    def check_order(self, vm_name: str, *, guest: bool = False) -> OrderReport:
        """The VM's records against its source's (seed 004); with `guest`, what the guests call the NICs.

        The guest comparison takes this VM's guest names live when it runs and its guest agent
        answers, else as last seen, and the source VM's guest's as its template or snapshot kept
        them; FAILED_PRECONDITION when either side has none to compare.
        """
        with self._pool.connection() as conn:
            vm = store.get_vm(conn, vm_name)
            nics = vnic_store.vm_vnics(conn, vm.id)
            source = self._source_vnics(conn, vm)
            recorded = self._source_guest_names(conn, vm) if guest else {}
        if vm.source_kind is None:
            raise FailedPrecondition(f"VM {vm_name} was not made from a template or snapshot; nothing to compare")
        if source is None:
            raise FailedPrecondition(f"the {vm.source_kind} {vm.source_name} that VM {vm_name} was made from "
                                     "no longer exists")
        kind = SourceKind(vm.source_kind)
        src = [source_nic(v) for v in source]
        expected, actual = source_guest_order(source), guest_order(nics)
        if guest:
            return self._check_guest_order(vm, kind, src, expected, actual, recorded)
        found = vmorder.check_order(kind, src, [source_nic(v) for v in nics],
                                    vm_positions=[source_nic(v) for v in sorted(nics, key=lambda v: v.position)])
        return OrderReport(vm, vmorder.rule_for(kind, src), expected, actual, found)

    def _check_guest_order(self, vm: VmRecord, kind: SourceKind, src: list[vmorder.SourceNic], expected: list[Vnic],
                           actual: list[Vnic], recorded: dict[str, str]) -> OrderReport:
        view = self._with_guest(self.get_stored(vm.name))
        mine = {name: g.name for name, g in view.guest.items()}
        source_named = [GuestNamed(v.name, recorded.get(v.name)) for v in expected]
        vm_named = [GuestNamed(v.name, mine.get(v.name)) for v in actual if not v.unplugging]
        if not known(source_named):
            raise FailedPrecondition(f"the {vm.source_kind} {vm.source_name} keeps no guest names: it was not made "
                                     "from a VM whose guest reported them (made directly, or before its VM's guest "
                                     "agent answered)")
        if not known(vm_named):
            raise FailedPrecondition(f"the guest of VM {vm.name} has not said what it calls its NICs: "
                                     f"{'its guest agent does not answer' if vm.state == 'up' else 'it is not running'}"
                                     " (and no names were seen before)")
        found = guest_name_mismatches(source_named, vm_named)
        return OrderReport(vm, vmorder.rule_for(kind, src), expected, actual, found, recorded, mine)

    def get_stored(self, name: str) -> VmView:
        """The VM as recorded (last-seen guest names), asking no agent."""
        with self._pool.connection() as conn:
            return vm_view(conn, name)

    @staticmethod
    def _source_vnics(conn: psycopg.Connection, vm: VmRecord) -> list[Vnic] | None:
        """The vNICs of the template or snapshot `vm` was made from; None when that source is gone."""
        source = VmService._source_ref(vm)
        return vnic_store.source_vnics(conn, *source) if source else None

    @staticmethod
    def _source_guest_names(conn: psycopg.Connection, vm: VmRecord) -> dict[str, str]:
        source = VmService._source_ref(vm)
        return guest_store.source_guest_names(conn, *source) if source else {}

    @staticmethod
    def _source_ref(vm: VmRecord) -> tuple[SourceKind, int] | None:
        if vm.source_kind == SourceKind.TEMPLATE.value and vm.source_template_id is not None:
            return SourceKind.TEMPLATE, vm.source_template_id
        if vm.source_kind == SourceKind.SNAPSHOT.value and vm.source_snapshot_id is not None:
            return SourceKind.SNAPSHOT, vm.source_snapshot_id
        return None

