"""Snapshots of a VM's vNICs with their MACs and PCI addresses, and bringing them back on the VM."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import rules
from virtfleet.errors import FailedPrecondition, VirtfleetError

from ..domain import vmorder
from ..domain.vmorder import SourceKind, guest_order, source_nic
from ..domain.vnic import Vnic
from ..store import guestnames as guest_store
from ..store import snapshots as store
from ..store import vms as vm_store
from ..store import vnics as vnic_store
from ..store.snapshots import SnapshotRecord
from ..store import profiles as profile_store
from . import macpools
from .vmobjects import allocate_macs, check_source_networks, placed, with_profile
from .vms import VmView, refuse_busy, vm_view

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotView:
    snapshot: SnapshotRecord
    nics: list[Vnic]          # in its VM's guest order when it was taken (domain/vmorder.py guest_order)
    guest_names: dict[str, str] = field(default_factory=dict)   # vNIC → its VM's guest's name for it then


@dataclass(frozen=True)
class MacChange:
    nic: str
    old_mac: str
    new_mac: str


class SnapshotService:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def create(self, vm_name: str, name: str) -> SnapshotView:
        rules.vm_name(name, "name", "snapshot")
        with self._pool.connection() as conn, conn.transaction():
            vm = vm_store.get_vm(conn, vm_name, lock=True)
            vnics = [replace(v, host_device=None) for v in vnic_store.vm_vnics(conn, vm.id) if not v.unplugging]
            return self._view(conn, store.insert_snapshot(conn, vm=vm, name=name, nics=vnics))

    def list(self, vm: str = "") -> list[SnapshotView]:
        with self._pool.connection() as conn:
            if vm:
                vm_store.get_vm(conn, vm)
            return [self._view(conn, s) for s in store.list_snapshots(conn, vm or None)]

    def get(self, name: str) -> SnapshotView:
        with self._pool.connection() as conn:
            return self._view(conn, store.get_snapshot(conn, name))

    def delete(self, name: str) -> None:
        with self._pool.connection() as conn:
            store.delete_snapshot(conn, name)

    def restore(self, name: str) -> tuple[VmView, list[MacChange]]:
        """The snapshot's vNICs and MACs come back on its stopped VM; a MAC held elsewhere is replaced."""
        with self._pool.connection() as conn, conn.transaction():
            snap = store.get_snapshot(conn, name)
            vm = vm_store.get_vm(conn, snap.vm, lock=True)
            if vm.state == "up":
                raise FailedPrecondition(f"VM {vm.name} is running on {vm.host}; stop it before restoring")
            refuse_busy(vm)
            vnics = vnic_store.source_vnics(conn, SourceKind.SNAPSHOT, snap.id)
            networks = vnic_store.network_refs(conn, vm.datacenter)
            check_source_networks(vnics, networks, "no longer exists")
            profiles = profile_store.profile_refs(conn, vm.datacenter)
            vnics = [with_profile(v, profiles, f"nics[{i}]") for i, v in enumerate(vnics)]
            current = vnic_store.vm_macs(conn, vm.id)
            if current:
                macpools.release_macs(conn, vm.cluster_id, current)
            vnic_store.delete_vm_vnics(conn, vm.id)
            taken = {v.mac for v in vnics if v.mac and not self._reclaim(conn, vm.cluster_id, v.mac)}
            swap = vmorder.restore_macs([source_nic(v) for v in vnics], taken,
                                        allocate_macs(conn, vm.cluster_id, len(taken)))
            restored = [replace(v, mac=swap.get(v.mac or "", v.mac), host_device=None) for v in vnics]
            vnic_store.insert_vm_vnics(conn, (placed(vm.id, v, networks, profiles, "nics") for v in restored))
            vm_store.set_resources(conn, vm.id, snap.memory_mib, snap.vcpus)
            vm_store.set_boot(conn, vm.id, snap.boot, snap.domain_type)
            changes = [MacChange(v.name, v.mac or "", swap[v.mac]) for v in vnics if v.mac in swap]
            view = vm_view(conn, vm.name)
        for c in changes:
            log.info("restore %s: vNIC %s MAC %s was taken, now %s", name, c.nic, c.old_mac, c.new_mac)
        return view, changes

    @staticmethod
    def _reclaim(conn: psycopg.Connection, cluster_id: int, mac: str) -> bool:
        """Take `mac` back from the pool; False when it cannot be had (held by another vNIC, out of range)."""
        try:
            with conn.transaction():
                macpools.claim_mac(conn, cluster_id, mac)
            return True
        except VirtfleetError:
            return False

    @staticmethod
    def _view(conn: psycopg.Connection, s: SnapshotRecord) -> SnapshotView:
        """The vNICs as the snapshotted VM's guest had them: by PCI address, then by domain XML position.

        Not in the order a VM made from it gets (seed 004 orders a snapshot without PCI
        addresses by vNIC name): a snapshot is a record of its VM, and `vm check-order`
        shows the order the rule gives.
        """
        return SnapshotView(s, guest_order(vnic_store.source_vnics(conn, SourceKind.SNAPSHOT, s.id)),
                            guest_store.source_guest_names(conn, SourceKind.SNAPSHOT, s.id))
