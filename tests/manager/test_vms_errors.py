"""Bad input: the right status naming what is wrong, and nothing created, no MAC taken."""
from __future__ import annotations

import grpc
import pytest

from virtfleet.rpc import field_violations
from manager.macpool.ranges import parse_range
from manager.service.macpools import MacPoolService
from virtfleet.v1 import fleet_pb2, vms_pb2

from .vmhelpers import api, create_template, create_vm, db, leased, vm_rows


def shrink_pool(manager, size: int) -> None:
    """The Default cluster onto a new MAC pool of `size` addresses."""
    pools = MacPoolService(manager.app.pool)
    pools.create(name="tiny", datacenter="Default", ranges=[parse_range("02:00:00:00:10:00", count=size)],
                 allow_duplicates=False)
    pools.set_cluster_pool("Default", "tiny")


def _fails(call, code):
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, err.value.details()
    return err.value


def test_unknown_template_snapshot_and_network_are_not_found(manager):
    assert "t9" in _fails(lambda: create_vm(manager, "vm1", template="t9"), grpc.StatusCode.NOT_FOUND).details()
    assert "s9" in _fails(lambda: create_vm(manager, "vm1", snapshot="s9"), grpc.StatusCode.NOT_FOUND).details()
    err = _fails(lambda: create_vm(manager, "vm1", "nic1=ovirtmgmt", "nic2=nonet"), grpc.StatusCode.NOT_FOUND)
    assert "nonet" in err.details() and "nics[1]" in err.details()
    _fails(lambda: create_template(manager, "t1", "nic1=nonet"), grpc.StatusCode.NOT_FOUND)
    _fails(lambda: api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm9")), grpc.StatusCode.NOT_FOUND)
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


def test_template_naming_a_network_the_cluster_lacks_is_a_failed_precondition(manager):
    # Templates name networks by name: one made in another datacenter may name a network Default lacks.
    with db(manager) as conn:
        conn.execute("INSERT INTO datacenters (name) VALUES ('dc2')")
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet",
                                                                                              datacenter="dc2")))
    create_template(manager, "t1", "nic2=vmnet", datacenter="dc2")
    err = _fails(lambda: create_vm(manager, "vm1", template="t1"), grpc.StatusCode.FAILED_PRECONDITION)
    assert "vmnet" in err.details() and "nic2" in err.details()
    err = _fails(lambda: api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="bulk", count=5, template="t1")).next(), grpc.StatusCode.FAILED_PRECONDITION)
    assert "vmnet" in err.details()
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


@pytest.mark.parametrize("specs, field", [
    (("nic1=ovirtmgmt", "nic1=ovirtmgmt"), "nics[1].name"),
    (("nic1=ovirtmgmt", "nic2=ovirtmgmt,mac=zz:00:00:00:00:00"), "nics[1].mac"),
    (("nic1=ovirtmgmt,pci=0000:00:3.0",), "nics[0].pci_address"),
    (("nic1=ovirtmgmt,pci=0000:00:03.0", "nic2=ovirtmgmt,pci=0000:00:03.0"), "nics[1].pci_address"),
    (("bad name=ovirtmgmt",), "nics[0].name"),
    (("nic1=virtual:default,mode=bridge",), "nics[0].mode"),
])
def test_bad_vnic_names_the_field_and_changes_nothing(manager, specs, field):
    err = _fails(lambda: create_vm(manager, "vm1", *specs), grpc.StatusCode.INVALID_ARGUMENT)
    assert [f for f, _ in field_violations(err)] == [field]
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


def test_bad_vm_name_is_invalid(manager):
    err = _fails(lambda: create_vm(manager, "-bad", "nic1=ovirtmgmt"), grpc.StatusCode.INVALID_ARGUMENT)
    assert [f for f, _ in field_violations(err)] == ["name"]


def test_not_enough_macs_is_resource_exhausted_before_anything_is_created(manager):
    create_template(manager, "t1", "nic1=ovirtmgmt", "nic2=ovirtmgmt", "nic3=ovirtmgmt")
    shrink_pool(manager, 8)
    create_vm(manager, "vm1", template="t1")
    create_vm(manager, "vm2", template="t1")
    _fails(lambda: create_vm(manager, "vm3", template="t1"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert leased(manager) == 6 and vm_rows(manager) == (2, 6)
    err = _fails(lambda: list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="bulk", count=3, template="t1", batch_size=1))), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert err.details()
    assert leased(manager) == 6 and vm_rows(manager) == (2, 6)


def test_failure_midway_creates_no_vm_and_leaks_no_mac(manager):
    taken = create_vm(manager, "vm1", "nic1=ovirtmgmt").nics[0].mac
    _fails(lambda: create_vm(manager, "vm2", "nic1=ovirtmgmt", "nic2=ovirtmgmt", f"nic3=ovirtmgmt,mac={taken}"),
           grpc.StatusCode.ALREADY_EXISTS)
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1
    create_template(manager, "t1", "nic1=ovirtmgmt", "nic2=ovirtmgmt")
    _fails(lambda: create_vm(manager, "vm1", template="t1"), grpc.StatusCode.ALREADY_EXISTS)
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1


def test_taken_bulk_name_is_refused_before_the_first_batch(manager):
    create_template(manager, "t1", "nic1=ovirtmgmt")
    create_vm(manager, "web-7", template="t1")
    err = _fails(lambda: list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="web", count=10, template="t1", batch_size=2))), grpc.StatusCode.ALREADY_EXISTS)
    assert "web-7" in err.details()
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1


def test_running_vm_cannot_be_deleted_and_stopped_vm_cannot_be_stopped(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt")
    err = _fails(lambda: api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="vm1")),
                 grpc.StatusCode.FAILED_PRECONDITION)
    assert "not running" in err.details()
    err = _fails(lambda: api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="vm1")),
                 grpc.StatusCode.FAILED_PRECONDITION)
    assert "no host" in err.details()
    err = _fails(lambda: api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm1")),
                 grpc.StatusCode.FAILED_PRECONDITION)
    assert "not made from a template" in err.details()
