"""VMs from templates and snapshots through the API, on real PostgreSQL: seed 004's order rules."""
from __future__ import annotations

from virtfleet.v1 import vms_pb2

from .vmhelpers import api, create_template, create_vm, leased, mac_int, vm_rows


def _order(vm):
    return [(n.name, n.pci_address) for n in vm.nics]


def _ascending(vm) -> bool:
    macs = [mac_int(n.mac) for n in vm.nics]
    return macs == sorted(macs) and len(set(macs)) == len(macs)


def test_vm_defined_directly_gets_macs_from_the_pool(manager):
    vm = create_vm(manager, "vm1", "nic1=ovirtmgmt", "nic2=virtual:default", "nic3=direct:eth1,mode=bridge")
    assert [n.name for n in vm.nics] == ["nic1", "nic2", "nic3"]
    assert all(n.mac for n in vm.nics) and len({n.mac for n in vm.nics}) == 3
    assert [(n.network, n.virtual_network, n.direct_nic) for n in vm.nics] == [
        ("ovirtmgmt", "", ""), ("", "default", ""), ("", "", "eth1")]
    assert (vm.state, vm.cluster, vm.memory_mib, vm.vcpus) == ("down", "Default", 64, 1)
    assert leased(manager) == 3
    listed = api(manager).ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest()).vms
    assert [v.name for v in listed] == ["vm1"]


def test_vm_from_template_without_pci_is_ordered_by_natural_name(manager):
    create_template(manager, "t1", "nic10=ovirtmgmt", "nic2=ovirtmgmt", "nic1=ovirtmgmt")
    vm = create_vm(manager, "vm1", template="t1")
    assert _order(vm) == [("nic1", ""), ("nic2", ""), ("nic10", "")]
    assert [n.position for n in vm.nics] == [0, 1, 2]
    assert _ascending(vm)
    assert vm.nic_rule == vms_pb2.NIC_RULE_NAME_ORDER and (vm.source_kind, vm.source_name) == ("template", "t1")
    check = api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm1"))
    assert check.in_order and not check.mismatches


def test_vm_from_template_with_pci_keeps_them_and_gives_macs_in_pci_order(manager):
    create_template(manager, "t1", "nic1=ovirtmgmt,pci=0000:00:05.0", "nic2=ovirtmgmt,pci=0000:00:03.0",
                    "nic10=ovirtmgmt,pci=0000:00:04.0")
    vm = create_vm(manager, "vm1", template="t1")
    assert _order(vm) == [("nic2", "0000:00:03.0"), ("nic10", "0000:00:04.0"), ("nic1", "0000:00:05.0")]
    assert _ascending(vm)
    assert vm.nic_rule == vms_pb2.NIC_RULE_PCI_ORDER


def test_template_from_a_vm_gives_the_next_vm_the_same_pci_per_position(manager):
    vm1 = create_vm(manager, "vm1", "a=ovirtmgmt,pci=0000:00:04.0", "b=ovirtmgmt,pci=0000:00:03.0",
                    "c=virtual:default,pci=0000:00:07.0")
    tpl = api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", from_vm="vm1"))
    assert [(n.name, n.pci_address, n.mac) for n in tpl.nics] == [
        ("b", "0000:00:03.0", ""), ("a", "0000:00:04.0", ""), ("c", "0000:00:07.0", "")]
    vm2 = create_vm(manager, "vm2", template="t1")
    assert [n.pci_address for n in vm2.nics] == [n.pci_address for n in vm1.nics]
    assert [n.name for n in vm2.nics] == [n.name for n in vm1.nics]
    assert _ascending(vm2)
    assert not {n.mac for n in vm2.nics} & {n.mac for n in vm1.nics}
    assert api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm2")).in_order


def test_vm_from_snapshot_without_pci_gets_new_macs(manager):
    vm1 = create_vm(manager, "vm1", "nic2=ovirtmgmt", "nic1=ovirtmgmt")
    snap = api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    assert {n.mac for n in snap.nics} == {n.mac for n in vm1.nics}
    vm2 = create_vm(manager, "vm2", snapshot="s1")
    assert vm2.nic_rule == vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS
    assert [n.name for n in vm2.nics] == ["nic1", "nic2"]
    assert not {n.mac for n in vm2.nics} & {n.mac for n in vm1.nics}
    assert _ascending(vm2)
    assert api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm2")).in_order


def test_vm_from_snapshot_with_pci_is_ordered_by_pci(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt,pci=0000:00:09.0", "nic2=ovirtmgmt,pci=0000:00:03.0")
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    vm2 = create_vm(manager, "vm2", snapshot="s1")
    assert vm2.nic_rule == vms_pb2.NIC_RULE_PCI_ORDER
    assert _order(vm2) == [("nic2", "0000:00:03.0"), ("nic1", "0000:00:09.0")]
    assert _ascending(vm2)


def test_check_order_reports_a_vnic_whose_mac_breaks_the_order(manager):
    create_template(manager, "t1", "nic1=ovirtmgmt,pci=0000:00:03.0", "nic2=ovirtmgmt,pci=0000:00:04.0")
    vm = create_vm(manager, "vm1", template="t1")
    low = min(mac_int(n.mac) for n in vm.nics)
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="nic2"))
    below = ":".join(f"{(low - 1) >> (8 * i) & 0xff:02x}" for i in reversed(range(6)))
    api(manager).AddNic(vms_pb2.AddNicRequest(vm="vm1", nic=vms_pb2.Nic(
        name="nic2", network="ovirtmgmt", mac=below, pci_address="0000:00:04.0")))
    check = api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm1"))
    assert not check.in_order
    assert [(m.position, m.field) for m in check.mismatches] == [(1, "MAC order")]
    assert [n.name for n in check.expected] == [n.name for n in check.actual] == ["nic1", "nic2"]


def test_nic_add_and_remove_take_and_return_macs(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt")
    vm = api(manager).AddNic(vms_pb2.AddNicRequest(vm="vm1", nic=vms_pb2.Nic(name="nic2", network="ovirtmgmt")))
    assert [(n.name, n.position) for n in vm.nics] == [("nic1", 0), ("nic2", 1)]
    assert leased(manager) == 2
    vm = api(manager).AddNic(vms_pb2.AddNicRequest(vm="vm1", nic=vms_pb2.Nic(
        name="nic3", network="ovirtmgmt", mac="02:00:00:00:00:AA")))
    assert vm.nics[2].mac == "02:00:00:00:00:aa"
    api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="vm1", nic="nic2"))
    assert leased(manager) == 2


def test_delete_returns_every_mac_and_removes_snapshots(manager):
    create_vm(manager, "vm1", "nic1=ovirtmgmt", "nic2=ovirtmgmt")
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"))
    reply = api(manager).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="vm1"))
    assert len(reply.released_macs) == 2
    assert leased(manager) == 0 and vm_rows(manager) == (0, 0)
    assert not api(manager).ListSnapshots(vms_pb2.ListSnapshotsRequest()).snapshots


def test_template_show_list_delete(manager):
    create_template(manager, "t1", "nic1=ovirtmgmt", memory_mib=128, vcpus=2)
    t = api(manager).GetTemplate(vms_pb2.GetTemplateRequest(name="t1"))
    assert (t.memory_mib, t.vcpus, t.datacenter, [n.name for n in t.nics]) == (128, 2, "Default", ["nic1"])
    vm = create_vm(manager, "vm1", template="t1")
    assert (vm.memory_mib, vm.vcpus) == (128, 2)
    api(manager).DeleteTemplate(vms_pb2.DeleteTemplateRequest(name="t1"))
    assert not api(manager).ListTemplates(vms_pb2.ListTemplatesRequest()).templates
    assert api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="vm1")).source_name == "t1"
