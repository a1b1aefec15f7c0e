"""A VM's vNICs added and removed: recorded with their MAC, and hot-plugged when the VM runs.

The MAC is taken when the vNIC is recorded and given back only when the vNIC is
gone; a refused hot-plug is forgotten again as if never added.
"""
from __future__ import annotations

import uuid
from dataclasses import replace

from psycopg_pool import ConnectionPool

from virtfleet.errors import InvalidArgument, NotFound
from virtfleet.v1 import vm_pb2

from ..agents import AgentClients
from ..domain.vnic import Vnic, check_vnic
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import VmRecord
from ..store.vnics import PlacedVnic
from . import macpools
from .vm_calls import VmAgentCalls, refuse_busy
from .vmobjects import VmView, allocate_macs, network_id, vm_view
from .vnic_messages import agent_vnic_on, attach_violation, runtime


class VnicService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._calls = VmAgentCalls(pool, agents)

    def _view(self, name: str) -> VmView:
        with self._pool.connection() as conn:
            return vm_view(conn, name)

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
                plug = agent_vnic_on(n, networks)
                token = store.claim(conn, vm.id)
        if host is None:
            return self._view(vm_name)
        try:
            status = self._calls.call(host, lambda s, t: s.AttachNic(vm_pb2.AttachNicRequest(vm=vm.name, nic=plug),
                                                               timeout=t))
        except BaseException as err:
            self._drop_nic(vm, n.name, token)
            if isinstance(err, InvalidArgument):
                raise attach_violation(err, n) from None
            raise
        with self._pool.connection() as conn, conn.transaction():
            vnic_store.store_runtime(conn, vm.id, [r for r in runtime(status) if r.name == n.name])
            store.release_claim(conn, vm.id, token)
        return self._view(vm_name)

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
                self._calls.call(host, lambda s, t: s.DetachNic(vm_pb2.DetachNicRequest(vm=vm.name, nic=nic), timeout=t))
            except BaseException:
                self._calls.release(vm.id, token)
                raise
            self._drop_nic(vm, nic, token)
        return self._view(vm_name)
