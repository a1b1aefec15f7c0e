"""Snapshots: create, list, restore (with a MAC taken meanwhile), delete."""
from __future__ import annotations

import grpc
import pytest

from virtfleet.v1 import fleet_pb2, vms_pb2

from .vmhelpers import api, create_vm, db, leased


def test_restore_brings_back_vnics_and_macs(manager):
    vm = create_vm(manager, "vm1", "nic1=ovirtmgmt,pci=0000:00:03.0", "nic2=ovirtmgmt,pci=0000:00:04.0")
    before = [(n.name, n.mac, n.pci_address) for n in vm.nics]
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="nic2"))
    api(manager).AddNic(vms_pb2.AddNicRequest(vm="vm1", nic=vms_pb2.Nic(name="nic9", network="ovirtmgmt")))
    reply = api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="s1"))
    assert not reply.mac_changes
    assert [(n.name, n.mac, n.pci_address) for n in reply.vm.nics] == before
    assert leased(manager) == 2
    assert (reply.vm.memory_mib, reply.vm.vcpus) == (64, 1)


def test_restore_replaces_a_mac_someone_took_and_reports_it(manager):
    vm = create_vm(manager, "vm1", "nic1=ovirtmgmt", "nic2=ovirtmgmt")
    macs = {n.name: n.mac for n in vm.nics}
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="nic2"))
    create_vm(manager, "thief", f"nic1=ovirtmgmt,mac={macs['nic2']}")
    reply = api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="s1"))
    assert [(c.nic, c.old_mac) for c in reply.mac_changes] == [("nic2", macs["nic2"])]
    new = reply.mac_changes[0].new_mac
    assert new != macs["nic2"]
    assert {n.name: n.mac for n in reply.vm.nics} == {"nic1": macs["nic1"], "nic2": new}
    assert leased(manager) == 3


def test_restore_of_an_unknown_snapshot_is_not_found(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt")
    with pytest.raises(grpc.RpcError) as err:
        api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.value.details()


def test_snapshots_are_listed_per_vm_and_deleted(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt")
    create_vm(manager, "vm2", "nic1=ovirtmgmt")
    for vm, name in (("vm1", "a"), ("vm1", "b"), ("vm2", "c")):
        api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm=vm, name=name))
    assert [s.name for s in api(manager).ListSnapshots(vms_pb2.ListSnapshotsRequest(vm="vm1")).snapshots] == ["a", "b"]
    api(manager).DeleteSnapshot(vms_pb2.DeleteSnapshotRequest(name="a"))
    assert [s.name for s in api(manager).ListSnapshots(vms_pb2.ListSnapshotsRequest()).snapshots] == ["b", "c"]
    with pytest.raises(grpc.RpcError) as err:
        api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm2", name="c"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_restore_needing_a_deleted_network_is_refused_and_changes_nothing(manager):
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    create_vm(manager, "vm1", "nic1=ovirtmgmt", "nic2=vmnet")
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="nic2"))
    with pytest.raises(grpc.RpcError) as refused:
        manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "s1" in refused.value.details()
    with db(manager) as conn:     # gone some way the API does not offer (a hand-edited database)
        conn.execute("DELETE FROM networks WHERE name = 'vmnet'")
    before = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="vm1"))
    with pytest.raises(grpc.RpcError) as err:
        api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="s1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "vmnet" in err.value.details()
    assert api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="vm1")) == before
    assert leased(manager) == 1
