"""vNIC values (pure): admin input checks, guest order, the agent's view."""
from __future__ import annotations

import pytest

from manager.errors import InvalidArgument
from manager.store.vms import NicRecord
from manager.vmnics import (agent_nic, bulk_names, check_nic, guest_order, pci_message, pci_text, runtime_rows,
                            source_guest_order)
from virtfleet.v1 import vm_pb2


def nic(name="nic1", **kw) -> NicRecord:
    return NicRecord(name=name, position=kw.pop("position", 0), kind="", **kw)


def test_kind_follows_the_target_and_direct_defaults_to_vepa():
    assert check_nic(nic(network="ovirtmgmt"), "n").kind == "network"
    assert check_nic(nic(virtual_network="default"), "n").kind == "virtual"
    d = check_nic(nic(direct_nic="eth1", network="vmnet"), "n")
    assert (d.kind, d.direct_mode, d.network) == ("direct", "vepa", "vmnet")
    assert check_nic(nic(network="x", mac="02:AB:00:00:00:01"), "n").mac == "02:ab:00:00:00:01"


@pytest.mark.parametrize("bad, field", [
    (nic(), "n"),
    (nic(network="a", virtual_network="b"), "n"),
    (nic(virtual_network="a", direct_nic="eth0"), "n"),
    (nic(direct_nic="a/b"), "n.direct_nic"),
    (nic(direct_nic="eth0", direct_mode="loud"), "n.mode"),
    (nic(network="a", virtualport={"type": "802.1Qbh", "profileid": "p"}), "n.mode"),
    (nic(name="", network="a"), "n.name"),
    (nic(network="a", mac="02:00:00:00:00"), "n.mac"),
    (nic(network="a", pci_address="0000:00:03.9"), "n.pci_address"),
])
def test_bad_vnic_names_its_field(bad, field):
    with pytest.raises(InvalidArgument) as err:
        check_nic(bad, "n")
    assert err.value.field == field


def test_bulk_names_are_numbered_and_checked():
    assert bulk_names("web", 3) == ["web-1", "web-2", "web-3"]
    for name, count, field in (("web", 0, "count"), ("-x", 1, "name"), ("a" * 62, 10, "name")):
        with pytest.raises(InvalidArgument) as err:
            bulk_names(name, count)
        assert err.value.field == field


def test_guest_order_is_pci_then_domain_xml_position():
    nics = [nic("c", position=0), nic("b", position=1, pci_address="0000:00:04.0"),
            nic("a", position=2, pci_address="0000:00:03.0"), nic("d", position=3)]
    assert [n.name for n in guest_order(nics)] == ["a", "b", "c", "d"]
    assert [n.name for n in source_guest_order([nic("nic10"), nic("nic2")])] == ["nic2", "nic10"]


def test_pci_text_round_trip():
    assert pci_text(pci_message("0000:01:1f.7")) == "0000:01:1f.7"


def test_agent_view_of_each_kind():
    bridge = agent_nic(check_nic(nic(network="vmnet", mac="02:00:00:00:00:01", pci_address="0000:00:03.0"), "n"),
                       vlan=100)
    assert (bridge.kind, bridge.source, bridge.vlan, bridge.pci.slot, bridge.mac) == (
        vm_pb2.VNIC_KIND_BRIDGE, "vmnet", 100, 3, "02:00:00:00:00:01")
    virt = agent_nic(check_nic(nic(virtual_network="default"), "n"), None)
    assert (virt.kind, virt.source, virt.HasField("pci")) == (vm_pb2.VNIC_KIND_VIRTUAL_NETWORK, "default", False)
    qbg = agent_nic(check_nic(nic(direct_nic="eth1", direct_mode="private", virtualport={
        "type": "802.1Qbg", "managerid": 11, "typeid": 5, "typeidversion": 1, "instanceid": ""}), "n"), 7)
    assert (qbg.kind, qbg.mode, qbg.qbg.managerid, qbg.vlan) == (vm_pb2.VNIC_KIND_DIRECT, vm_pb2.DIRECT_MODE_PRIVATE,
                                                                 11, 7)
    qbh = agent_nic(check_nic(nic(direct_nic="eth1", virtualport={"type": "802.1Qbh", "profileid": "p"}), "n"), None)
    assert (qbh.mode, qbh.qbh.profileid) == (vm_pb2.DIRECT_MODE_VEPA, "p")


def test_runtime_rows_keep_only_our_vnics():
    status = vm_pb2.VmStatus(nics=[
        vm_pb2.VNicRuntime(name="nic1", host_device="vnet3", pci=vm_pb2.PciAddress(slot=3)),
        vm_pb2.VNicRuntime(name="nic2", host_device=""),
        vm_pb2.VNicRuntime(name="", host_device="vnet9")])
    assert runtime_rows(status) == [("nic1", "0000:00:03.0", "vnet3"), ("nic2", None, None)]
