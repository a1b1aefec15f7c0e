"""What a VM request is refused for, up front and naming the field, and what the records then say (issue 13, 6-8).

Each refusal leaves nothing: no VM, no vNIC, no MAC taken.
"""
from __future__ import annotations

import grpc
import pytest
from click.testing import CliRunner

from manager.cli.main import cli
from virtfleet.rpc import field_violations
from virtfleet.v1 import fleet_pb2, vms_pb2

from .vmhelpers import api, create_template, create_vm, leased, nics, vm_rows


def _refused(call, code=grpc.StatusCode.INVALID_ARGUMENT) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, err.value.details()
    return err.value


def _fields(err: grpc.RpcError) -> list[str]:
    return [f for f, _ in field_violations(err)]


def _network(manager, name: str, *, vm_network: bool = True) -> None:
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name),
                                                               no_vm_network=not vm_network))


def _add(manager, vm: str, spec: str) -> vms_pb2.VirtualMachine:
    return api(manager).AddNic(vms_pb2.AddNicRequest(vm=vm, nic=nics(spec)[0]))


# -- item 6: checked at create and add, not first at start -----------------------------------------


@pytest.mark.parametrize("spec, field", [
    ("nic1=storage", "nics[0].network"),
    ("nic1=ovirtmgmt,model=bogus", "nics[0].model"),
    ("nic1=ovirtmgmt,pci=0000:00:01.0", "nics[0].pci_address"),
    ("nic1=ovirtmgmt,pci=0000:00:00.0", "nics[0].pci_address"),
    ("nic1=ovirtmgmt,pci=0000:00:02.0", None),   # no VGA card: libvirt gives slot 02 to the first vNIC itself
    ("nic1=ovirtmgmt,pci=0000:00:1f.7,model=e1000", None),
])
def test_vnic_create_checks_what_start_would_refuse(manager, spec, field):
    _network(manager, "storage", vm_network=False)
    if field is None:
        assert create_vm(manager, "vm1", spec).nics[0].pci_address == spec.split("pci=")[1].split(",")[0]
        return
    err = _refused(lambda: create_vm(manager, "vm1", "nic0=ovirtmgmt", spec))
    assert _fields(err) == [field.replace("[0]", "[1]")]
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


def test_a_vnic_on_a_network_without_bridge_says_why(manager):
    _network(manager, "storage", vm_network=False)
    err = _refused(lambda: create_vm(manager, "vm1", "nic1=storage"))
    assert "not a VM network" in err.details() and "direct:" in err.details()
    create_vm(manager, "vm1", "nic1=direct:eth1,network=storage")     # direct: the network only gives its VLAN


@pytest.mark.parametrize("spec, field", [
    ("nic2=storage", "nic.network"),
    ("nic2=ovirtmgmt,model=bogus", "nic.model"),
    ("nic2=ovirtmgmt,pci=0000:00:01.0", "nic.pci_address"),
    ("nic2=ovirtmgmt,pci=0000:00:03.0", "nic.pci_address"),     # nic1's
])
def test_vnic_add_checks_up_front_and_never_is_internal(manager, spec, field):
    _network(manager, "storage", vm_network=False)
    create_vm(manager, "vm1", "nic1=ovirtmgmt,pci=0000:00:03.0")
    err = _refused(lambda: _add(manager, "vm1", spec))
    assert _fields(err) == [field]
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1


def test_vnic_add_names_the_vnic_holding_the_pci_slot(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt,pci=0000:00:05.0")
    err = _refused(lambda: _add(manager, "vm1", "nic2=ovirtmgmt,pci=0000:00:05.0"))
    assert "nic1" in err.details()


def test_template_create_checks_the_vnics_too(manager):
    _network(manager, "storage", vm_network=False)
    for spec, field in (("a=storage", "nics[0].network"), ("a=ovirtmgmt,pci=0000:00:01.0", "nics[0].pci_address")):
        assert _fields(_refused(lambda: create_template(manager, "t1", spec))) == [field]


# -- item 7: networks in use, MACs named by their field -----------------------------------------------


def test_network_delete_is_refused_while_a_template_snapshot_or_vm_uses_it(manager):
    _network(manager, "vmnet")
    create_template(manager, "t1", "a=vmnet")
    create_vm(manager, "vm1", "a=vmnet")
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    delete = lambda: manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))  # noqa: E731
    assert "template(s): t1" in _refused(delete, grpc.StatusCode.FAILED_PRECONDITION).details()
    api(manager).DeleteTemplate(vms_pb2.DeleteTemplateRequest(name="t1"))
    assert "snapshot(s): s1" in _refused(delete, grpc.StatusCode.FAILED_PRECONDITION).details()
    api(manager).DeleteSnapshot(vms_pb2.DeleteSnapshotRequest(name="s1"))
    assert "VM(s): vm1" in _refused(delete, grpc.StatusCode.FAILED_PRECONDITION).details()
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="a"))
    delete()
    names = [n.name for n in manager.fleet.ListNetworks(fleet_pb2.ListNetworksRequest()).networks]
    assert "vmnet" not in names


def test_template_refuses_a_mac_rather_than_dropping_it(manager):
    err = _refused(lambda: create_template(manager, "t1", "a=ovirtmgmt", "b=ovirtmgmt,mac=02:00:00:00:00:09"))
    assert _fields(err) == ["nics[1].mac"] and "no MACs" in err.details()
    assert not api(manager).ListTemplates(vms_pb2.ListTemplatesRequest()).templates


def test_one_mac_twice_in_a_request_names_the_second_vnic(manager):
    err = _refused(lambda: create_vm(manager, "vm1", "a=ovirtmgmt,mac=02:00:00:00:00:09",
                                     "b=ovirtmgmt,mac=02:00:00:00:00:09"))
    assert _fields(err) == ["nics[1].mac"] and "nics[0]" in err.details()
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


def test_a_multicast_mac_names_the_vnics_field(manager):
    err = _refused(lambda: create_vm(manager, "vm1", "a=ovirtmgmt,mac=01:00:5e:00:00:01"))
    assert _fields(err) == ["nics[0].mac"] and "multicast" in err.details()
    err = _refused(lambda: create_template(manager, "t1", "a=ovirtmgmt,mac=01:00:5e:00:00:01"))
    assert _fields(err) == ["nics[0].mac"]
    create_vm(manager, "vm1", "a=ovirtmgmt")
    assert _fields(_refused(lambda: _add(manager, "vm1", "b=ovirtmgmt,mac=03:00:00:00:00:01"))) == ["nic.mac"]


# -- item 8: a snapshot taken before the first boot ---------------------------------------------------


def test_snapshot_before_first_boot_shows_its_vms_order_and_check_order_says_what_the_rule_keeps(manager):
    vm = create_vm(manager, "vm1", "nic2=ovirtmgmt", "nic1=ovirtmgmt", "nic3=ovirtmgmt")
    assert [n.name for n in vm.nics] == ["nic2", "nic1", "nic3"]
    snap = api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    assert [n.name for n in snap.nics] == ["nic2", "nic1", "nic3"]
    shown = api(manager).GetSnapshot(vms_pb2.GetSnapshotRequest(name="s1"))
    assert [n.name for n in shown.nics] == [n.name for n in vm.nics]
    vm2 = api(manager).CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name="vm2", snapshot="s1"))
    assert [n.name for n in vm2.nics] == ["nic1", "nic2", "nic3"]
    assert vm2.nic_rule == vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS
    check = api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm2"))
    assert check.in_order and [n.name for n in check.expected] == ["nic1", "nic2", "nic3"]
    said = CliRunner().invoke(cli, ["--manager", manager.target, "vm", "check-order", "vm2"]).output
    assert "as the source's guest did" not in said
    assert "new MACs" in said and "name order" in said and "not kept" in said


def test_check_order_of_a_vm_from_a_template_with_pci_promises_the_sources_guest_order(manager):
    create_template(manager, "t1", "a=ovirtmgmt,pci=0000:00:04.0", "b=ovirtmgmt,pci=0000:00:03.0")
    create_vm(manager, "vm1", template="t1")
    said = CliRunner().invoke(cli, ["--manager", manager.target, "vm", "check-order", "vm1"]).output
    assert "in order:" in said and "as the source's guest did" in said
