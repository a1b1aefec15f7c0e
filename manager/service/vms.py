"""VMs: made directly or from a template or snapshot (seed 004's rules, domain/vmorder.py), their vNICs, running them.

Every change to the database is one transaction, and MACs come from the cluster's
pool inside it (manager/service/macpools.py), so bad input, an exhausted pool or a
killed manager leaves no half-made VM and no MAC taken. Bulk creation commits one
transaction per batch.

A change that calls an agent (start, stop, hot-plug) holds no transaction or lock
across the call: it claims the VM in a short transaction, calls the agent with
nothing open, then records the result in another short transaction that checks
what it depends on (store/vms.py); what it cannot record it undoes on the host.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import rules
from virtfleet.errors import (Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                              VirtfleetError)
from virtfleet.v1 import vm_pb2, vm_pb2_grpc

from ..agents import AgentClients
from ..domain import vmorder
from ..domain.vmorder import Rule, SourceKind, guest_order, source_guest_order, source_nic
from ..domain.vnic import Vnic, VnicKind, check_vnic, check_vnics
from ..store import snapshots as snapshot_store
from ..store import templates as template_store
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import HostRef, VmRecord
from ..store.vnics import NetworkRef, PlacedVnic
from . import macpools
from .vmobjects import DEFAULT_MEMORY_MIB, allocate_macs, check_source_networks, network_id
from .vnic_messages import agent_vnic, attach_violation, runtime, spec_violation

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CLUSTER = "Default"
DEFAULT_BATCH = 100
MAX_BULK = 100_000


@dataclass(frozen=True)
class VmView:
    vm: VmRecord
    nics: list[Vnic]          # in guest order


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


def bulk_names(name: str, count: int) -> list[str]:
    """NAME-1 … NAME-count, each a valid VM name."""
    rules.vm_name(name, "name")
    if not 1 <= count <= MAX_BULK:
        raise InvalidArgument("count", f"between 1 and {MAX_BULK}")
    names = [f"{name}-{i}" for i in range(1, count + 1)]
    rules.vm_name(names[-1], "name")
    return names


def vm_view(conn: psycopg.Connection, name: str) -> VmView:
    vm = store.get_vm(conn, name)
    return VmView(vm, guest_order(vnic_store.vm_vnics(conn, vm.id)))


def planned_vnics(src: VmSource, macs: Sequence[str]) -> list[Vnic]:
    """A new VM's vNICs from its source: seed 004 decides positions, MACs and kept PCI addresses."""
    plan = vmorder.plan_new_vm(src.kind, [source_nic(v) for v in src.nics], macs)
    by_name = {v.name: v for v in src.nics}
    return [replace(by_name[p.source.name], position=p.position, mac=p.mac, host_device=None) for p in plan.nics]


def refuse_busy(vm: VmRecord) -> None:
    """A VM a runtime change has claimed takes no other change until that one is recorded."""
    if vm.busy:
        raise FailedPrecondition(f"VM {vm.name} is being started, stopped or hot-plugged by another request; "
                                 "try again when it is done")


class VmService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._agents = agents

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> VmView:
        with self._pool.connection() as conn:
            return vm_view(conn, name)

    def list(self) -> list[VmView]:
        with self._pool.connection() as conn:
            vms = store.list_vms(conn)
            nics = vnic_store.vnics_by_vm(conn)
        return [VmView(vm, guest_order(nics.get(vm.id, []))) for vm in vms]

    # -- creating --------------------------------------------------------------------------------

    def create(self, *, name: str, cluster: str = "", template: str = "", snapshot: str = "", memory_mib: int = 0,
               vcpus: int = 0, nics: Sequence[Vnic] = (), start: bool = False, host: str = "") -> VmView:
        rules.vm_name(name, "name")
        if template and snapshot:
            raise InvalidArgument("snapshot", "give a template or a snapshot, not both")
        if (template or snapshot) and nics:
            raise InvalidArgument("nics", "the vNICs come from the template or snapshot")
        checked = check_vnics(nics)
        with self._pool.connection() as conn, conn.transaction():
            c = store.cluster(conn, cluster or DEFAULT_CLUSTER)
            networks = vnic_store.network_refs(conn, c.datacenter)
            if template or snapshot:
                src = self._source(conn, template, snapshot)
                check_source_networks(src.nics, networks, f"cluster {cluster or DEFAULT_CLUSTER} lacks")
                planned = planned_vnics(src, allocate_macs(conn, c.id, len(src.nics)))
                ids = store.insert_vms(conn, cluster_id=c.id, names=[name], memory_mib=memory_mib or src.memory_mib,
                                       vcpus=vcpus or src.vcpus, source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name)
            else:
                for i, n in enumerate(checked):
                    network_id(n, networks, f"nics[{i}].network")
                fresh = iter(allocate_macs(conn, c.id, sum(1 for n in checked if not n.mac)))
                planned = [replace(n, position=i, mac=macpools.claim_mac(conn, c.id, n.mac) if n.mac else next(fresh))
                           for i, n in enumerate(checked)]
                ids = store.insert_vms(conn, cluster_id=c.id, names=[name], memory_mib=memory_mib or DEFAULT_MEMORY_MIB,
                                       vcpus=vcpus or 1, source_kind=None, source_name=None, template_id=None,
                                       snapshot_id=None, nic_rule=None)
            vnic_store.insert_vm_vnics(conn, (PlacedVnic(ids[name], n, network_id(n, networks, "nics"))
                                              for n in planned))
        log.info("created VM %s", name)
        if start:
            return self.start(name, host=host)
        return self.get(name)

    def create_many(self, *, name: str, count: int, cluster: str = "", template: str = "", snapshot: str = "",
                    batch_size: int = 0, start: bool = False) -> Iterator[BulkProgress]:
        """NAME-1 … NAME-count from one source: one transaction per batch, its MACs taken in one call.

        Everything that can be known up front (names free, source, networks, enough MACs) is checked
        before the first batch.
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
            src = self._source(conn, template, snapshot)
            check_source_networks(src.nics, networks, f"cluster {cluster} lacks")
            taken = store.existing_vm_names(conn, names)
            if taken:
                raise AlreadyExists(f"VM {taken[0]!r} already exists ({len(taken)} of the {count} names are taken)")
            # A probe rolled back at once: an exhausted pool is refused before any VM exists.
            with conn.transaction(force_rollback=True):
                allocate_macs(conn, c.id, count * len(src.nics))
        per_vm = len(src.nics)
        created: list[str] = []
        for first in range(0, count, batch):
            chunk = names[first:first + batch]
            with self._pool.connection() as conn, conn.transaction():
                macs = allocate_macs(conn, c.id, len(chunk) * per_vm)
                ids = store.insert_vms(conn, cluster_id=c.id, names=chunk, memory_mib=src.memory_mib,
                                       vcpus=src.vcpus, source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name)
                vnic_store.insert_vm_vnics(conn, (
                    PlacedVnic(ids[vm], n, network_id(n, networks, "nics"))
                    for k, vm in enumerate(chunk)
                    for n in planned_vnics(src, macs[k * per_vm:(k + 1) * per_vm])))
            created.extend(chunk)
            yield BulkProgress(count, len(created), 0, chunk, src.rule)
        log.info("created %d VMs from %s %s", count, src.kind.value, src.name)
        if start:
            for started, vm in enumerate(created, 1):
                self.start(vm)
                yield BulkProgress(count, count, started, [vm], src.rule)

    @staticmethod
    def _source(conn: psycopg.Connection, template: str, snapshot: str) -> VmSource:
        if template:
            t = template_store.get_template(conn, template)
            nics = vnic_store.source_vnics(conn, SourceKind.TEMPLATE, t.id)
            return VmSource(SourceKind.TEMPLATE, t.name, t.id, None, t.memory_mib, t.vcpus, nics,
                            vmorder.rule_for(SourceKind.TEMPLATE, [source_nic(v) for v in nics]))
        s = snapshot_store.get_snapshot(conn, snapshot)
        nics = vnic_store.source_vnics(conn, SourceKind.SNAPSHOT, s.id)
        return VmSource(SourceKind.SNAPSHOT, s.name, None, s.id, s.memory_mib, s.vcpus, nics,
                        vmorder.rule_for(SourceKind.SNAPSHOT, [source_nic(v) for v in nics]))

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

    # -- running -----------------------------------------------------------------------------------

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
                                 nics=[self._agent_vnic(n, networks) for n in nics])
            token = store.claim(conn, vm.id)
        try:
            status = self._define_and_start(target, spec, nics, paused)
        except BaseException:
            self._release(vm.id, token)
            raise
        if not self._record_start(vm.id, token, target, status):
            self._undo_start(target, vm.name)
            raise Aborted(f"VM {name} changed while it was being started on {target.name} (deleted, or taken over "
                          f"after its claim expired); it was stopped there again")
        log.info("started VM %s on %s", name, target.name)
        return self.get(name)

    def _define_and_start(self, host: HostRef, spec: vm_pb2.VmSpec, nics: Sequence[Vnic],
                          paused: bool) -> vm_pb2.VmStatus:
        try:
            self._call(host, lambda s, t: s.DefineVm(vm_pb2.DefineVmRequest(spec=spec), timeout=t))
        except InvalidArgument as err:
            raise spec_violation(err, nics) from None
        try:
            return self._call(host, lambda s, t: s.StartVm(vm_pb2.StartVmRequest(name=spec.name, paused=paused),
                                                           timeout=t))
        except VirtfleetError:
            self._quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=spec.name),
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
        self._quietly(host, "destroy", lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=vm), timeout=t))
        self._quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=vm), timeout=t))

    def _agent_vnic(self, n: Vnic, networks: dict[str, NetworkRef]) -> vm_pb2.VNic:
        vlan = None
        if n.network:
            if n.network not in networks:
                raise FailedPrecondition(f"vNIC {n.name}: network {n.network!r} no longer exists")
            ref = networks[n.network]
            if n.kind is VnicKind.BRIDGE and not ref.vm_network:
                raise FailedPrecondition(f"vNIC {n.name}: network {n.network} is not a VM network (no bridge)")
            vlan = ref.vlan
        return agent_vnic(n, vlan)

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
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            host = vm.placement
            if host is None:
                raise FailedPrecondition(f"VM {name} is not running")
            refuse_busy(vm)
            token = store.claim(conn, vm.id)
        try:
            if force:
                self._call(host, lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=name), timeout=t))
            else:
                wait = timeout_s or 60
                self._call(host, lambda s, t: s.StopVm(vm_pb2.StopVmRequest(name=name, timeout_s=wait),
                                                       timeout=t + wait))
        except BaseException:
            self._release(vm.id, token)
            raise
        self._quietly(host, "undefine", lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=name), timeout=t))
        with self._pool.connection() as conn, conn.transaction():
            if not store.finish_stop(conn, vm.id, host.id):
                log.warning("VM %s was stopped on %s but is no longer recorded there", name, vm.host)
        return self.get(name)

    # -- vNICs ------------------------------------------------------------------------------------

    def add_nic(self, vm_name: str, nic: Vnic) -> VmView:
        """Recorded first (MAC taken), then hot-plugged when the VM runs; a refused hot-plug is forgotten again."""
        n = check_vnic(nic, "nic")
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            refuse_busy(vm)
            networks = vnic_store.network_refs(conn, vm.datacenter)
            net_id = network_id(n, networks, "nic.network")
            if n.name in {x.name for x in vnic_store.vm_vnics(conn, vm.id)}:
                raise InvalidArgument("nic.name", f"VM {vm_name} already has a vNIC {n.name}")
            mac = macpools.claim_mac(conn, vm.cluster_id, n.mac) if n.mac else allocate_macs(conn, vm.cluster_id, 1)[0]
            n = replace(n, mac=mac, position=vnic_store.next_position(conn, vm.id), host_device=None)
            vnic_store.insert_vm_vnics(conn, [PlacedVnic(vm.id, n, net_id)])
            host = vm.placement
            if host is not None:
                plug = self._agent_vnic(n, networks)
                token = store.claim(conn, vm.id)
        if host is None:
            return self.get(vm_name)
        try:
            status = self._call(host, lambda s, t: s.AttachNic(vm_pb2.AttachNicRequest(vm=vm.name, nic=plug),
                                                               timeout=t))
        except BaseException as err:
            self._drop_nic(vm, n.name, token)
            if isinstance(err, InvalidArgument):
                raise attach_violation(err, n) from None
            raise
        with self._pool.connection() as conn, conn.transaction():
            vnic_store.store_runtime(conn, vm.id, [r for r in runtime(status) if r.name == n.name])
            store.release_claim(conn, vm.id, token)
        return self.get(vm_name)

    def _drop_nic(self, vm: VmRecord, nic: str, token: uuid.UUID) -> None:
        """The vNIC and its MAC go, and the claim ends: after a refused hot-plug (as if never added), or an unplug."""
        with self._pool.connection() as conn, conn.transaction():
            mac = vnic_store.delete_vnic(conn, vm.id, nic)
            if mac:
                macpools.release_macs(conn, vm.cluster_id, [mac])
            store.release_claim(conn, vm.id, token)

    def remove_nic(self, vm_name: str, nic: str) -> VmView:
        """Unplugged from the host first when the VM runs; then the vNIC and its MAC go."""
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            refuse_busy(vm)
            if nic not in {x.name for x in vnic_store.vm_vnics(conn, vm.id)}:
                raise NotFound(f"vNIC {nic!r} does not exist")
            host = vm.placement
            if host is None:
                macpools.release_macs(conn, vm.cluster_id, [vnic_store.delete_vnic(conn, vm.id, nic)])
            else:
                token = store.claim(conn, vm.id)
        if host is not None:
            try:
                self._call(host, lambda s, t: s.DetachNic(vm_pb2.DetachNicRequest(vm=vm.name, nic=nic), timeout=t))
            except BaseException:
                self._release(vm.id, token)
                raise
            self._drop_nic(vm, nic, token)
        return self.get(vm_name)

    # -- order check --------------------------------------------------------------------------------

    def check_order(self, vm_name: str) -> OrderReport:
        with self._pool.connection() as conn:
            vm = store.get_vm(conn, vm_name)
            nics = vnic_store.vm_vnics(conn, vm.id)
            source = self._source_vnics(conn, vm)
        if vm.source_kind is None:
            raise FailedPrecondition(f"VM {vm_name} was not made from a template or snapshot; nothing to compare")
        if source is None:
            raise FailedPrecondition(f"the {vm.source_kind} {vm.source_name} that VM {vm_name} was made from "
                                     "no longer exists")
        kind = SourceKind(vm.source_kind)
        src = [source_nic(v) for v in source]
        found = vmorder.check_order(kind, src, [source_nic(v) for v in nics],
                                    vm_positions=[source_nic(v) for v in sorted(nics, key=lambda v: v.position)])
        return OrderReport(vm, vmorder.rule_for(kind, src), source_guest_order(source), guest_order(nics), found)

    @staticmethod
    def _source_vnics(conn: psycopg.Connection, vm: VmRecord) -> list[Vnic] | None:
        """The vNICs of the template or snapshot `vm` was made from; None when that source is gone."""
        if vm.source_kind == SourceKind.TEMPLATE.value and vm.source_template_id is not None:
            return vnic_store.source_vnics(conn, SourceKind.TEMPLATE, vm.source_template_id)
        if vm.source_kind == SourceKind.SNAPSHOT.value and vm.source_snapshot_id is not None:
            return vnic_store.source_vnics(conn, SourceKind.SNAPSHOT, vm.source_snapshot_id)
        return None

    # -- agent calls, with no transaction open -------------------------------------------------------

    def _call(self, host: HostRef, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], T]) -> T:
        return self._agents.call_vm(host.name, host.endpoint, fn)

    def _quietly(self, host: HostRef, what: str, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], object]) -> None:
        """Clean-up on a host: a failure is logged, not raised (the error that made it necessary wins)."""
        try:
            self._call(host, fn)
        except VirtfleetError as exc:
            log.warning("could not %s on %s: %s", what, host.name, exc.message)

    def _release(self, vm_id: int, token: uuid.UUID) -> None:
        """End a claim whose change failed; if even that fails, the claim expires (store.CLAIM_LIFETIME)."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                store.release_claim(conn, vm_id, token)
        except psycopg.Error:
            log.exception("could not release the claim on VM #%d; it expires after %s", vm_id, store.CLAIM_LIFETIME)
