"""VMs, templates and snapshots: the use cases, with seed 004's vNIC order rules (manager/vmorder.py).

Every change to the database is one transaction, and MACs come from the cluster's
pool inside it (manager/service/macpools.py), so a failure anywhere — bad input,
an exhausted pool, an agent error, a killed manager — leaves no half-made VM and
no MAC taken. Bulk creation commits one transaction per batch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet.v1 import vm_pb2

from .. import vmorder
from ..agents import AgentClients
from ..errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, VirtfleetError
from ..store import vms as store
from ..store.vms import NicRecord, SnapshotRecord, TemplateRecord, VmRecord
from ..vmnics import (agent_nic, bulk_names, check_name, check_nic, check_nics, guest_order, runtime_rows,
                      source_guest_order, source_nic)
from ..vmorder import SourceKind
from . import macpools

log = logging.getLogger(__name__)

DEFAULT_CLUSTER = "Default"
DEFAULT_MEMORY_MIB = 64
DEFAULT_BATCH = 100


@dataclass(frozen=True)
class VmView:
    vm: VmRecord
    nics: list[NicRecord]          # in guest order


@dataclass(frozen=True)
class BulkProgress:
    total: int
    created: int
    started: int
    vms: list[str]
    rule: str


@dataclass(frozen=True)
class OrderReport:
    vm: VmRecord
    rule: str
    expected: list[NicRecord]
    actual: list[NicRecord]
    mismatches: list[vmorder.Mismatch]


@dataclass(frozen=True)
class MacChange:
    nic: str
    old_mac: str
    new_mac: str


@dataclass(frozen=True)
class TemplateView:
    template: TemplateRecord
    nics: list[NicRecord]


@dataclass(frozen=True)
class SnapshotView:
    snapshot: SnapshotRecord
    nics: list[NicRecord]


def _allocate(conn: psycopg.Connection, cluster_id: int, count: int) -> list[str]:
    """MACs from the cluster's pool, ascending; none asked, none taken (a VM may have no vNIC).

    The pool hands out at most `macpools.MAX_BATCH` per call; a bigger request takes several.
    """
    got: list[str] = []
    while len(got) < count:
        got.extend(macpools.allocate_macs(conn, cluster_id, min(count - len(got), macpools.MAX_BATCH)))
    return sorted(got, key=vmorder.mac_value)


# -- the service ---------------------------------------------------------------------------------


class VmService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._agents = agents

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> VmView:
        with self._pool.connection() as conn:
            vm = store.get_vm(conn, name)
            return VmView(vm, guest_order(store.vm_nics(conn, vm.id)))

    def list(self) -> list[VmView]:
        with self._pool.connection() as conn:
            vms = store.list_vms(conn)
            nics = store.nics_by_vm(conn)
        return [VmView(vm, guest_order(nics.get(vm.id, []))) for vm in vms]

    # -- creating --------------------------------------------------------------------------------

    def create(self, *, name: str, cluster: str = "", template: str = "", snapshot: str = "", memory_mib: int = 0,
               vcpus: int = 0, nics: Sequence[NicRecord] = (), start: bool = False, host: str = "") -> VmView:
        check_name(name, "name")
        if template and snapshot:
            raise InvalidArgument("snapshot", "give a template or a snapshot, not both")
        if (template or snapshot) and nics:
            raise InvalidArgument("nics", "the vNICs come from the template or snapshot")
        checked = check_nics(nics)
        with self._pool.connection() as conn, conn.transaction():
            cluster_id, dc = store.cluster(conn, cluster or DEFAULT_CLUSTER)
            networks = store.network_ids(conn, dc)
            if template or snapshot:
                src = self._source(conn, template, snapshot)
                self._check_source_networks(src.nics, networks, cluster or DEFAULT_CLUSTER)
                macs = _allocate(conn, cluster_id, len(src.nics))
                rows = self._planned_rows(src, macs)
                ids = store.insert_vms(conn, cluster_id=cluster_id, names=[name],
                                       memory_mib=memory_mib or src.memory_mib, vcpus=vcpus or src.vcpus,
                                       source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name)
            else:
                for i, n in enumerate(checked):
                    self._network_id(n, networks, f"nics[{i}].network")
                fresh = iter(_allocate(conn, cluster_id, sum(1 for n in checked if not n.mac)))
                rows = [replace(n, position=i, mac=(macpools.claim_mac(conn, cluster_id, n.mac) if n.mac
                                                    else next(fresh)))
                        for i, n in enumerate(checked)]
                ids = store.insert_vms(conn, cluster_id=cluster_id, names=[name],
                                       memory_mib=memory_mib or DEFAULT_MEMORY_MIB, vcpus=vcpus or 1,
                                       source_kind=None, source_name=None, template_id=None, snapshot_id=None,
                                       nic_rule=None)
            store.insert_vnics(conn, ((ids[name], n, self._network_id(n, networks, "nics")) for n in rows))
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
            cluster_id, dc = store.cluster(conn, cluster)
            networks = store.network_ids(conn, dc)
            src = self._source(conn, template, snapshot)
            self._check_source_networks(src.nics, networks, cluster)
            taken = store.existing_vm_names(conn, names)
            if taken:
                raise AlreadyExists(f"VM {taken[0]!r} already exists ({len(taken)} of the {count} names are taken)")
            # A probe rolled back at once: an exhausted pool is refused before any VM exists.
            with conn.transaction(force_rollback=True):
                _allocate(conn, cluster_id, count * len(src.nics))
        nics_per_vm = len(src.nics)
        created: list[str] = []
        for start_i in range(0, count, batch):
            chunk = names[start_i:start_i + batch]
            with self._pool.connection() as conn, conn.transaction():
                macs = _allocate(conn, cluster_id, len(chunk) * nics_per_vm)
                ids = store.insert_vms(conn, cluster_id=cluster_id, names=chunk, memory_mib=src.memory_mib,
                                       vcpus=src.vcpus, source_kind=src.kind.value, source_name=src.name,
                                       template_id=src.template_id, snapshot_id=src.snapshot_id,
                                       nic_rule=src.rule.name)
                store.insert_vnics(conn, (
                    (ids[vm], n, self._network_id(n, networks, "nics"))
                    for k, vm in enumerate(chunk)
                    for n in self._planned_rows(src, macs[k * nics_per_vm:(k + 1) * nics_per_vm])))
            created.extend(chunk)
            yield BulkProgress(count, len(created), 0, chunk, src.rule.value)
        log.info("created %d VMs from %s %s", count, src.kind.value, src.name)
        if start:
            started = 0
            for vm in created:
                self.start(vm)
                started += 1
                yield BulkProgress(count, count, started, [vm], src.rule.value)

    @dataclass(frozen=True)
    class _Source:
        kind: SourceKind
        name: str
        template_id: int | None
        snapshot_id: int | None
        memory_mib: int
        vcpus: int
        nics: list[NicRecord]
        rule: vmorder.Rule

    def _source(self, conn: psycopg.Connection, template: str, snapshot: str) -> "VmService._Source":
        if template:
            t = store.get_template(conn, template)
            nics = store.template_nics(conn, t.id)
            return self._Source(SourceKind.TEMPLATE, t.name, t.id, None, t.memory_mib, t.vcpus, nics,
                                vmorder.rule_for(SourceKind.TEMPLATE, [source_nic(n) for n in nics]))
        s = store.get_snapshot(conn, snapshot)
        nics = store.snapshot_nics(conn, s.id)
        return self._Source(SourceKind.SNAPSHOT, s.name, None, s.id, s.memory_mib, s.vcpus, nics,
                            vmorder.rule_for(SourceKind.SNAPSHOT, [source_nic(n) for n in nics]))

    @staticmethod
    def _planned_rows(src: "VmService._Source", macs: Sequence[str]) -> list[NicRecord]:
        plan = vmorder.plan_new_vm(src.kind, [source_nic(n) for n in src.nics], macs)
        by_name = {n.name: n for n in src.nics}
        return [replace(by_name[p.source.name], position=p.position, mac=p.mac, pci_address=p.pci_address,
                        host_device=None) for p in plan.nics]

    @staticmethod
    def _check_source_networks(nics: Sequence[NicRecord], networks: dict, cluster: str) -> None:
        for n in nics:
            if n.network and n.network not in networks:
                raise FailedPrecondition(f"vNIC {n.name} uses network {n.network!r}, which cluster {cluster} lacks")

    @staticmethod
    def _network_id(n: NicRecord, networks: dict, field: str) -> int | None:
        if not n.network:
            return None
        if n.network not in networks:
            raise NotFound(f"network {n.network!r} does not exist ({field})")
        return networks[n.network][0]

    # -- running -----------------------------------------------------------------------------------

    def start(self, name: str, *, host: str = "", paused: bool = False) -> VmView:
        """Define and start the VM on a host; store the PCI addresses and devices the host reports."""
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {name} is already running on {vm.host}")
            host_id, host_name, endpoint = self._pick_host(conn, vm, host)
            nics = store.vm_nics(conn, vm.id)
            networks = store.network_ids(conn, vm.datacenter)
            spec = vm_pb2.VmSpec(name=vm.name, memory_mib=vm.memory_mib, vcpus=vm.vcpus,
                                 nics=[self._agent_nic(n, networks) for n in nics])
            self._agents.call_vm(host_name, endpoint, lambda s, t: s.DefineVm(vm_pb2.DefineVmRequest(spec=spec),
                                                                             timeout=t))
            try:
                status = self._agents.call_vm(host_name, endpoint, lambda s, t: s.StartVm(
                    vm_pb2.StartVmRequest(name=vm.name, paused=paused), timeout=t))
            except VirtfleetError:
                self._undefine_quietly(host_name, endpoint, vm.name)
                raise
            store.set_running(conn, vm.id, host_id)
            store.store_runtime(conn, vm.id, runtime_rows(status))
        log.info("started VM %s on %s", name, host_name)
        return self.get(name)

    def _agent_nic(self, n: NicRecord, networks: dict) -> vm_pb2.VNic:
        vlan = None
        if n.network:
            if n.network not in networks:
                raise FailedPrecondition(f"vNIC {n.name}: network {n.network!r} no longer exists")
            _, vm_network, vlan = networks[n.network]
            if n.kind == "network" and not vm_network:
                raise FailedPrecondition(f"vNIC {n.name}: network {n.network} is not a VM network (no bridge)")
        return agent_nic(n, vlan)

    def _pick_host(self, conn: psycopg.Connection, vm: VmRecord, host: str) -> tuple[int, str, str]:
        candidates = store.count_vms_by_host(conn, vm.cluster_id)
        if host:
            for hid, hname, endpoint, _ in candidates:
                if hname == host:
                    return hid, hname, endpoint
            raise FailedPrecondition(f"host {host!r} is not up in cluster {vm.cluster}")
        if not candidates:
            raise FailedPrecondition(f"cluster {vm.cluster} has no host that is up")
        hid, hname, endpoint, _ = candidates[0]
        return hid, hname, endpoint

    def _undefine_quietly(self, host: str, endpoint: str, vm: str) -> None:
        try:
            self._agents.call_vm(host, endpoint, lambda s, t: s.UndefineVm(vm_pb2.UndefineVmRequest(name=vm),
                                                                          timeout=t))
        except VirtfleetError as exc:
            log.warning("could not undefine %s on %s: %s", vm, host, exc.message)

    def stop(self, name: str, *, force: bool = False, timeout_s: int = 0) -> VmView:
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state != "up" or vm.host is None or vm.host_endpoint is None:
                raise FailedPrecondition(f"VM {name} is not running")
            host, endpoint = vm.host, vm.host_endpoint
            if force:
                self._agents.call_vm(host, endpoint, lambda s, t: s.DestroyVm(vm_pb2.DestroyVmRequest(name=name),
                                                                             timeout=t))
            else:
                wait = timeout_s or 60
                self._agents.call_vm(host, endpoint, lambda s, t: s.StopVm(
                    vm_pb2.StopVmRequest(name=name, timeout_s=wait), timeout=t + wait))
            self._undefine_quietly(host, endpoint, name)
            store.set_running(conn, vm.id, None)
        return self.get(name)

    def delete(self, name: str) -> list[str]:
        """Delete a stopped VM (and its snapshots); its MACs go back to the pool."""
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, name, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {name} is running on {vm.host}; stop it first")
            macs = store.vm_macs(conn, vm.id)
            if macs:
                macpools.release_macs(conn, vm.cluster_id, macs)
            store.delete_vm(conn, vm.id)
        return macs

    # -- vNICs ------------------------------------------------------------------------------------

    def add_nic(self, vm_name: str, nic: NicRecord) -> VmView:
        n = check_nic(nic, "nic")
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            networks = store.network_ids(conn, vm.datacenter)
            network_id = self._network_id(n, networks, "nic.network")
            if n.name in {x.name for x in store.vm_nics(conn, vm.id)}:
                raise InvalidArgument("nic.name", f"VM {vm_name} already has a vNIC {n.name}")
            mac = (macpools.claim_mac(conn, vm.cluster_id, n.mac) if n.mac
                   else _allocate(conn, vm.cluster_id, 1)[0])
            n = replace(n, mac=mac, position=store.next_position(conn, vm.id), host_device=None)
            store.insert_vnics(conn, [(vm.id, n, network_id)])
            if vm.state == "up" and vm.host and vm.host_endpoint:
                agent = self._agent_nic(n, networks)
                status = self._agents.call_vm(vm.host, vm.host_endpoint, lambda s, t: s.AttachNic(
                    vm_pb2.AttachNicRequest(vm=vm.name, nic=agent), timeout=t))
                store.store_runtime(conn, vm.id, [r for r in runtime_rows(status) if r[0] == n.name])
        return self.get(vm_name)

    def remove_nic(self, vm_name: str, nic: str) -> VmView:
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            mac = store.delete_vnic(conn, vm.id, nic)
            if vm.state == "up" and vm.host and vm.host_endpoint:
                self._agents.call_vm(vm.host, vm.host_endpoint, lambda s, t: s.DetachNic(
                    vm_pb2.DetachNicRequest(vm=vm.name, nic=nic), timeout=t))
            macpools.release_macs(conn, vm.cluster_id, [mac])
        return self.get(vm_name)

    # -- order check --------------------------------------------------------------------------------

    def check_order(self, vm_name: str) -> OrderReport:
        with self._pool.connection() as conn:
            vm = store.get_vm(conn, vm_name)
            nics = store.vm_nics(conn, vm.id)
            source = store.source_nics(conn, vm)
        if vm.source_kind is None:
            raise FailedPrecondition(f"VM {vm_name} was not made from a template or snapshot; nothing to compare")
        if source is None:
            raise FailedPrecondition(f"the {vm.source_kind} {vm.source_name} that VM {vm_name} was made from "
                                     "no longer exists")
        kind = SourceKind(vm.source_kind)
        src = [source_nic(n) for n in source]
        found = vmorder.check_order(kind, src, [source_nic(n) for n in nics],
                                    vm_positions=[source_nic(n) for n in sorted(nics, key=lambda n: n.position)])
        return OrderReport(vm, vmorder.rule_for(kind, src).value, source_guest_order(source), guest_order(nics), found)

    # -- templates ----------------------------------------------------------------------------------

    def create_template(self, *, name: str, from_vm: str = "", datacenter: str = "", memory_mib: int = 0,
                        vcpus: int = 0, nics: Sequence[NicRecord] = ()) -> TemplateView:
        check_name(name, "name")
        if from_vm and nics:
            raise InvalidArgument("nics", "a template made from a VM takes the VM's vNICs")
        with self._pool.connection() as conn, conn.transaction():
            if from_vm:
                vm = store.get_vm(conn, from_vm)
                rows = [replace(n, mac=None, host_device=None) for n in store.vm_nics(conn, vm.id)]
                dc, memory_mib, vcpus = vm.datacenter, memory_mib or vm.memory_mib, vcpus or vm.vcpus
            else:
                dc = datacenter or "Default"
                rows = [replace(n, position=i, mac=None) for i, n in enumerate(check_nics(nics))]
                networks = store.network_ids(conn, dc)
                for i, n in enumerate(rows):
                    self._network_id(n, networks, f"nics[{i}].network")
            t = store.insert_template(conn, name=name, datacenter=dc, memory_mib=memory_mib or DEFAULT_MEMORY_MIB,
                                      vcpus=vcpus or 1, source_vm=from_vm or None, nics=rows)
            return TemplateView(t, source_guest_order(store.template_nics(conn, t.id)))

    def templates(self) -> list[TemplateView]:
        with self._pool.connection() as conn:
            return [TemplateView(t, source_guest_order(store.template_nics(conn, t.id)))
                    for t in store.list_templates(conn)]

    def template(self, name: str) -> TemplateView:
        with self._pool.connection() as conn:
            t = store.get_template(conn, name)
            return TemplateView(t, source_guest_order(store.template_nics(conn, t.id)))

    def delete_template(self, name: str) -> None:
        with self._pool.connection() as conn:
            store.delete_template(conn, name)

    # -- snapshots ----------------------------------------------------------------------------------

    def create_snapshot(self, vm_name: str, name: str) -> SnapshotView:
        check_name(name, "name")
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            s = store.insert_snapshot(conn, vm=vm, name=name,
                                      nics=[replace(n, host_device=None) for n in store.vm_nics(conn, vm.id)])
            return SnapshotView(s, source_guest_order(store.snapshot_nics(conn, s.id)))

    def snapshots(self, vm: str = "") -> list[SnapshotView]:
        with self._pool.connection() as conn:
            if vm:
                store.get_vm(conn, vm)
            return [SnapshotView(s, source_guest_order(store.snapshot_nics(conn, s.id)))
                    for s in store.list_snapshots(conn, vm or None)]

    def snapshot(self, name: str) -> SnapshotView:
        with self._pool.connection() as conn:
            s = store.get_snapshot(conn, name)
            return SnapshotView(s, source_guest_order(store.snapshot_nics(conn, s.id)))

    def delete_snapshot(self, name: str) -> None:
        with self._pool.connection() as conn:
            store.delete_snapshot(conn, name)

    def restore_snapshot(self, name: str) -> tuple[VmView, list[MacChange]]:
        """The snapshot's vNICs and MACs come back on its stopped VM; a MAC held elsewhere is replaced."""
        with self._pool.connection() as conn, conn.transaction():
            snap = store.get_snapshot(conn, name)
            vm = store.get_vm(conn, snap.vm, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {vm.name} is running on {vm.host}; stop it before restoring")
            nics = store.snapshot_nics(conn, snap.id)
            networks = store.network_ids(conn, vm.datacenter)
            for n in nics:
                if n.network and n.network not in networks:
                    raise FailedPrecondition(f"vNIC {n.name} uses network {n.network!r}, which no longer exists")
            current = store.vm_macs(conn, vm.id)
            if current:
                macpools.release_macs(conn, vm.cluster_id, current)
            store.delete_vnics(conn, vm.id)
            taken = {n.mac for n in nics if n.mac and not self._reclaim(conn, vm.cluster_id, n.mac)}
            fresh = _allocate(conn, vm.cluster_id, len(taken))
            swap = vmorder.restore_macs([source_nic(n) for n in nics], taken, fresh)
            rows = [replace(n, mac=swap.get(n.mac or "", n.mac), host_device=None) for n in nics]
            store.insert_vnics(conn, ((vm.id, n, self._network_id(n, networks, "nics")) for n in rows))
            store.set_resources(conn, vm.id, snap.memory_mib, snap.vcpus)
            changes = [MacChange(n.name, n.mac or "", swap[n.mac]) for n in nics if n.mac in swap]
        for c in changes:
            log.info("restore %s: vNIC %s MAC %s was taken, now %s", name, c.nic, c.old_mac, c.new_mac)
        return self.get(vm.name), changes

    @staticmethod
    def _reclaim(conn: psycopg.Connection, cluster_id: int, mac: str) -> bool:
        """Take `mac` back from the pool; False when it cannot be had (held by another vNIC, out of range)."""
        try:
            with conn.transaction():
                macpools.claim_mac(conn, cluster_id, mac)
            return True
        except VirtfleetError:
            return False

