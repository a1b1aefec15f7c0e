"""What VMs, templates and snapshots share in the service: names, MACs for their vNICs, the networks those name.

All run on the caller's connection inside the caller's transaction, so a failure
anywhere leaves no MAC taken (manager/service/macpools.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import macaddr
from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound, shown

from ..domain.guestnames import GuestNic
from ..domain.vmorder import guest_order
from ..domain.vnic import Vnic, VnicKind
from ..store import guestnames as guest_store
from ..store import vms as store
from ..store import vnics as vnic_store
from ..store.vms import VmRecord
from ..store.profiles import ProfileRef
from ..store.vnics import NetworkRef, PlacedVnic
from . import macpools

DEFAULT_MEMORY_MIB = 64


@dataclass(frozen=True)
class VmView:
    """A VM with its vNICs as its guest numbers them."""

    vm: VmRecord
    nics: list[Vnic]          # in guest order
    # vNIC name → what the guest calls it: just now from its guest agent when `guest_live`, else as last seen
    guest: Mapping[str, GuestNic] = field(default_factory=dict)
    guest_live: bool = False


def vm_view(conn: psycopg.Connection, name: str) -> VmView:
    vm = store.get_vm(conn, name)
    return VmView(vm, guest_order(vnic_store.vm_vnics(conn, vm.id)), guest_store.vm_guest_nics(conn, vm.id))


def read_vm_view(pool: ConnectionPool, name: str) -> VmView:
    """The VM as a reply shows it, read on a connection of its own (after a change is recorded)."""
    with pool.connection() as conn:
        return vm_view(conn, name)


def allocate_macs(conn: psycopg.Connection, cluster_id: int, count: int) -> list[str]:
    """MACs from the cluster's pool, ascending; none asked, none taken (a VM may have no vNIC).

    The pool hands out at most `macpools.MAX_BATCH` per call; a bigger request takes several.
    """
    got: list[str] = []
    while len(got) < count:
        got.extend(macpools.allocate_macs(conn, cluster_id, min(count - len(got), macpools.MAX_BATCH)))
    return sorted(got, key=macaddr.parse)


def network_id(v: Vnic, networks: Mapping[str, NetworkRef], field: str) -> int | None:
    """The id of the logical network an admin's vNIC names; NotFound naming the request field."""
    if not v.network:
        return None
    if v.network not in networks:
        raise NotFound(f"network {v.network!r} does not exist ({field})")
    return networks[v.network].id


def attached_network_id(v: Vnic, networks: Mapping[str, NetworkRef], field: str) -> int | None:
    """`network_id`, and a vNIC on a logical network's bridge needs a VM network (one with a bridge).

    Checked when an admin gives the vNIC (VM create, `vm nic add`, template create), not first at start.
    """
    net = network_id(v, networks, field)
    if v.kind is VnicKind.BRIDGE and v.network and not networks[v.network].vm_network:
        raise InvalidArgument(field, f"network {v.network} is not a VM network (it has no bridge; it was made "
                                     "with --no-vm-network): a vNIC attaches to a VM network, or directly to a "
                                     "host NIC with `direct:`")
    return net


def with_profile(v: Vnic, profiles: Mapping[str, ProfileRef], field: str) -> Vnic:
    """The vNIC with its profile named: a network alone means the network's own profile (of its name), a profile
    alone means its network; a profile of another network than the vNIC's is refused naming `field.profile`."""
    if not v.profile:
        return replace(v, profile=v.network) if v.network else v
    if v.kind is VnicKind.VIRTUAL_NETWORK or (v.kind is VnicKind.DIRECT and not v.network):
        raise InvalidArgument(f"{field}.profile", "a profile belongs to a logical network; this vNIC names none "
                                                  "(a direct vNIC takes one with network=)")
    ref = profiles.get(v.profile)
    if ref is None:
        raise NotFound(f"vNIC profile {shown(v.profile)} does not exist ({field}.profile)")
    if v.network and v.network != ref.network:
        raise InvalidArgument(f"{field}.profile", f"profile {v.profile} is a profile of network {ref.network}, "
                                                  f"not of {v.network}")
    return replace(v, network=ref.network)


def placed(vm_id: int, v: Vnic, networks: Mapping[str, NetworkRef], profiles: Mapping[str, ProfileRef],
           field: str) -> PlacedVnic:
    """A VM's vNIC (its profile named, with_profile) as the store inserts it: network and profile by id."""
    ref = profiles.get(v.profile) if v.profile else None
    if v.profile and ref is None:
        raise NotFound(f"vNIC profile {shown(v.profile)} does not exist ({field}.profile)")
    return PlacedVnic(vm_id, v, network_id(v, networks, field), ref.id if ref else None)


def check_in_cluster(v: Vnic, in_cluster: frozenset[str], cluster: str, field: str) -> None:
    """A VM's vNIC uses only networks attached to the VM's cluster (its hosts carry no others)."""
    if v.network and v.network not in in_cluster:
        raise FailedPrecondition(f"network {v.network} is not attached to cluster {cluster} ({field}); a VM's "
                                 f"vNICs use its cluster's networks: `network attach-cluster {v.network} {cluster}`")


def check_source_networks(vnics: Sequence[Vnic], networks: Mapping[str, NetworkRef], where: str) -> None:
    """A template's or snapshot's vNICs name networks by name: each must (still) exist `where`."""
    for v in vnics:
        if v.network and v.network not in networks:
            raise FailedPrecondition(f"vNIC {v.name} uses network {v.network!r}, which {where}")


def forget_unplugging(conn: psycopg.Connection, vm_id: int, cluster_id: int) -> list[str]:
    """A stopped VM's guest holds no device any more: its vNICs left `unplugging` go, their MACs back to the pool.

    Called where the VM is recorded down (vm_runtime.py's stop), in that transaction.
    """
    macs = vnic_store.delete_unplugging(conn, vm_id)
    if macs:
        macpools.release_macs(conn, cluster_id, macs)
    return macs
