"""A VM's vNICs added and removed, their link set, their profiles re-applied: recorded, and live when the VM runs.

The MAC is taken when the vNIC is recorded and given back only when the vNIC is
gone — from the guest too: a hot-unplug the guest has not completed leaves the
vNIC `unplugging` (remove_nic). A refused hot-plug is forgotten again as if never added.

A running vNIC records the generation of its profile it was given (at start, hot-plug,
or a sync that took effect live); a profile edited since shows it out of sync. A sync
or link change sends the whole vNIC (vm.proto's UpdateNic): the agent changes what
libvirt can change live and names what needs a restart — the vNIC stays out of sync then.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Sequence

from psycopg_pool import ConnectionPool

from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound
from virtfleet.v1 import vm_pb2

from ..agents import AgentClients
from ..domain.vnic import DirectMode, Vnic, VnicKind, check_vnic
from ..store import networks as net_store
from ..store import profiles as profile_store
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import HostRef, VmRecord
from . import macpools
from .vm_calls import VmAgentCalls, refuse_busy
from .vmobjects import (VmView, allocate_macs, attached_network_id, check_in_cluster, placed, read_vm_view,
                        with_profile)
from .vnic_messages import agent_vnic_on, attach_violation, runtime


log = logging.getLogger(__name__)

UNPLUG_GRACE_S = 3.0     # how long a guest gets to release an unplugged device before the vNIC is left unplugging
UNPLUG_POLL_S = 0.25


def live_vnic(status: vm_pb2.VmStatus, nic: str) -> bool:
    """Whether the running domain, as the host read it back, still has vNIC `nic`."""
    return any(r.name == nic for r in runtime(status))


def check_new_vnic(vm_name: str, n: Vnic, current: Sequence[Vnic]) -> None:
    """A vNIC added to a VM takes a name and a PCI address none of its vNICs has (unplugging ones included)."""
    for x in current:
        if x.name == n.name and x.unplugging:
            raise InvalidArgument("nic.name", f"VM {vm_name}'s vNIC {n.name} is still being unplugged (its guest "
                                              f"has not released it; it keeps MAC {x.mac}): run `vm nic remove "
                                              f"{vm_name} {n.name}` again once it has, or stop the VM")
        if x.name == n.name:
            raise InvalidArgument("nic.name", f"VM {vm_name} already has a vNIC {n.name}")
        if n.pci is not None and x.pci == n.pci:
            raise InvalidArgument("nic.pci_address", f"{n.pci} is the PCI address of VM {vm_name}'s vNIC {x.name}")


@dataclass(frozen=True)
class NicSync:
    """What re-applying one vNIC's profile did."""

    nic: str
    applied_live: bool
    needs_restart: list[str]


def refuse_link_change(vm_name: str, n: Vnic) -> None:
    """libvirt cannot set the link of a passthrough macvtap (the guest owns the whole NIC); an unplugging vNIC is
    on its way out."""
    if n.kind is VnicKind.DIRECT and n.direct_mode is DirectMode.PASSTHROUGH:
        raise InvalidArgument("nic", f"VM {vm_name}'s vNIC {n.name} is a direct passthrough vNIC: libvirt cannot "
                                     "change its link state (the guest owns the host NIC)")
    if n.unplugging:
        raise FailedPrecondition(f"VM {vm_name}'s vNIC {n.name} is being unplugged")


def find_vnic(vm_name: str, vnics: Sequence[Vnic], nic: str) -> Vnic:
    for n in vnics:
        if n.name == nic:
            return n
    raise NotFound(f"VM {vm_name} has no vNIC {nic!r}")


class VnicService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._calls = VmAgentCalls(pool, agents)

    def add_nic(self, vm_name: str, nic: Vnic) -> VmView:
        """A hot-plug is one of the manager's bounded VM changes (vm_calls.VmAgentCalls.change)."""
        with self._calls.change(f"adding vNIC {nic.name} to VM {vm_name}"):
            return self._add_nic(vm_name, nic)

    def _add_nic(self, vm_name: str, nic: Vnic) -> VmView:
        """Recorded first (MAC taken), then hot-plugged when the VM runs; a refused hot-plug is forgotten again."""
        n = check_vnic(nic, "nic")
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            refuse_busy(vm)
            networks = vnic_store.network_refs(conn, vm.datacenter)
            profiles = profile_store.profile_refs(conn, vm.datacenter)
            n = with_profile(n, profiles, "nic")
            attached_network_id(n, networks, "nic.network")
            check_in_cluster(n, net_store.cluster_network_names(conn, vm.cluster_id), vm.cluster, "nic.network")
            check_new_vnic(vm_name, n, vnic_store.vm_vnics(conn, vm.id))
            mac = macpools.claim_mac(conn, vm.cluster_id, n.mac) if n.mac else allocate_macs(conn, vm.cluster_id, 1)[0]
            n = replace(n, mac=mac, position=vnic_store.next_position(conn, vm.id), host_device=None)
            vnic_store.insert_vm_vnics(conn, [placed(vm.id, n, networks, profiles, "nic")])
            host = vm.placement
            if host is not None:
                profile = profile_store.vm_profiles(conn, vm.id).get(n.name)
                plug = agent_vnic_on(n, networks, profile)
                token = store.claim(conn, vm.id)
        if host is None:
            return read_vm_view(self._pool, vm_name)
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
            if profile is not None:
                vnic_store.record_applied(conn, vm.id, {n.name: profile.generation})
            store.release_claim(conn, vm.id, token)
        return read_vm_view(self._pool, vm_name)

    # -- link state and profiles, live -------------------------------------------------------------

    def set_link(self, vm_name: str, nic: str, *, up: bool) -> VmView:
        """Recorded; on a running VM applied first (UpdateNic), and recorded only when the host took it."""
        with self._calls.change(f"setting the link of VM {vm_name}'s vNIC {nic} {'up' if up else 'down'}"):
            with self._pool.connection() as conn, conn.transaction():
                vm = store.get_vm(conn, vm_name, lock=True)
                refuse_busy(vm)
                n = find_vnic(vm_name, vnic_store.vm_vnics(conn, vm.id), nic)
                refuse_link_change(vm_name, n)
                host = vm.placement
                if host is None:
                    vnic_store.set_link_down(conn, vm.id, nic, not up)
                else:
                    networks = vnic_store.network_refs(conn, vm.datacenter)
                    profile = profile_store.vm_profiles(conn, vm.id).get(nic)
                    msg = agent_vnic_on(replace(n, link_down=not up), networks, profile)
                    token = store.claim(conn, vm.id)
            if host is None:
                return read_vm_view(self._pool, vm_name)
            try:
                reply = self._update(host, vm.name, n, msg)
            except BaseException:
                self._calls.release(vm.id, token)
                raise
            with self._pool.connection() as conn, conn.transaction():
                vnic_store.set_link_down(conn, vm.id, nic, not up)
                if profile is not None and reply.applied_live:
                    vnic_store.record_applied(conn, vm.id, {nic: profile.generation})
                store.release_claim(conn, vm.id, token)
            log.info("VM %s vNIC %s: link %s", vm_name, nic, "up" if up else "down")
            return read_vm_view(self._pool, vm_name)

    def sync_nics(self, vm_name: str, nic: str = "") -> tuple[VmView, list[NicSync]]:
        """Re-applies the profiles of the running VM's vNICs: the one named (even in sync), else those out of sync.

        A stopped VM is never out of sync (it gets its profiles at start): nothing to do. Each
        vNIC is its own UpdateNic; the generation is recorded for those that took effect live,
        and the ones done are recorded even when a later one fails.
        """
        with self._calls.change(f"syncing the vNICs of VM {vm_name}"):
            with self._pool.connection() as conn, conn.transaction():
                vm = store.get_vm(conn, vm_name, lock=True)
                refuse_busy(vm)
                vnics = vnic_store.vm_vnics(conn, vm.id)
                targets = [find_vnic(vm_name, vnics, nic)] if nic else [n for n in vnics if n.profile_out_of_sync]
                host = vm.placement
                plan = []
                if host is not None:
                    networks = vnic_store.network_refs(conn, vm.datacenter)
                    profiles = profile_store.vm_profiles(conn, vm.id)
                    plan = [(n, agent_vnic_on(n, networks, profiles.get(n.name)), profiles.get(n.name))
                            for n in targets if not n.unplugging]
                if plan:
                    token = store.claim(conn, vm.id)
            if host is None or not plan:
                return read_vm_view(self._pool, vm_name), []
            results: list[NicSync] = []
            applied: dict[str, int] = {}
            try:
                for n, msg, profile in plan:
                    reply = self._update(host, vm.name, n, msg)
                    results.append(NicSync(n.name, reply.applied_live, list(reply.needs_restart)))
                    if profile is not None and reply.applied_live:
                        applied[n.name] = profile.generation
            finally:
                with self._pool.connection() as conn, conn.transaction():
                    vnic_store.record_applied(conn, vm.id, applied)
                    store.release_claim(conn, vm.id, token)
            log.info("VM %s: synced %d vNICs (%d live)", vm_name, len(results), len(applied))
            return read_vm_view(self._pool, vm_name), results

    def _update(self, host: HostRef, vm: str, n: Vnic, msg: vm_pb2.VNic) -> vm_pb2.UpdateNicResponse:
        try:
            return self._calls.call(host, lambda s, t: s.UpdateNic(vm_pb2.UpdateNicRequest(vm=vm, nic=msg),
                                                                   timeout=t))
        except InvalidArgument as err:
            raise attach_violation(err, n) from None

    def _drop_nic(self, vm: VmRecord, nic: str, token: uuid.UUID) -> None:
        """The vNIC and its MAC go, and the claim ends: after a refused hot-plug (as if never added), or an unplug."""
        with self._pool.connection() as conn, conn.transaction():
            mac = vnic_store.delete_vnic(conn, vm.id, nic)
            if mac:
                macpools.release_macs(conn, vm.cluster_id, [mac])
            store.release_claim(conn, vm.id, token)

    def remove_nic(self, vm_name: str, nic: str) -> VmView:
        with self._calls.change(f"removing vNIC {nic} from VM {vm_name}"):
            return self._remove_nic(vm_name, nic)

    def _remove_nic(self, vm_name: str, nic: str) -> VmView:
        """Unplugged from the host first when the VM runs; the vNIC and its MAC go once the guest let go.

        libvirt's detach only asks the guest to release the device. When the live domain
        XML still has it afterwards (a guest that ignores the request, or is slow), the
        vNIC stays recorded as `unplugging` with its MAC leased, so no other vNIC gets
        that MAC while this guest may still use it. The rule that completes it: a later
        `vm nic remove` of the same vNIC that finds it gone from the live XML (it asks
        the guest again when not), or the VM's stop. The reply (the VM) lists the vNIC
        with `unplugging` set when it stays.
        """
        with self._pool.connection() as conn, conn.transaction():
            vm = store.get_vm(conn, vm_name, lock=True)
            refuse_busy(vm)
            found = {x.name: x for x in vnic_store.vm_vnics(conn, vm.id)}
            if nic not in found:
                raise NotFound(f"vNIC {nic!r} does not exist")
            host = vm.placement
            if host is None:
                macpools.release_macs(conn, vm.cluster_id, [vnic_store.delete_vnic(conn, vm.id, nic)])
            else:
                token = store.claim(conn, vm.id)
        if host is None:
            return read_vm_view(self._pool, vm_name)
        try:
            released = self._unplug(host, vm.name, nic, again=found[nic].unplugging)
        except BaseException:
            self._calls.release(vm.id, token)
            raise
        if released:
            self._drop_nic(vm, nic, token)
        else:
            log.warning("VM %s: the guest has not released vNIC %s; kept as unplugging with MAC %s",
                        vm.name, nic, found[nic].mac)
            with self._pool.connection() as conn, conn.transaction():
                vnic_store.mark_unplugging(conn, vm.id, nic)
                store.release_claim(conn, vm.id, token)
        return read_vm_view(self._pool, vm_name)

    def _unplug(self, host: HostRef, vm: str, nic: str, *, again: bool) -> bool:
        """Ask the host to unplug `nic`; whether the guest has released it (gone from the live XML).

        A vNIC already `unplugging` is first looked up (GetVm): gone means done. Otherwise
        the unplug is asked (again), and the live XML read for UNPLUG_GRACE_S while a
        cooperating guest finishes its part.
        """
        if again:
            status = self._calls.call(host, lambda s, t: s.GetVm(vm_pb2.GetVmRequest(name=vm), timeout=t))
            if not live_vnic(status, nic):
                return True
        status = self._calls.call(host, lambda s, t: s.DetachNic(vm_pb2.DetachNicRequest(vm=vm, nic=nic), timeout=t))
        deadline = time.monotonic() + UNPLUG_GRACE_S
        while live_vnic(status, nic) and time.monotonic() < deadline:
            time.sleep(UNPLUG_POLL_S)
            status = self._calls.call(host, lambda s, t: s.GetVm(vm_pb2.GetVmRequest(name=vm), timeout=t))
        return not live_vnic(status, nic)
