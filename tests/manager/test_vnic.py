"""vNIC values (pure): admin input checks, guest order, the agent's view and its field paths read back."""
from __future__ import annotations

import pytest

from manager.api.vnics import vnic_from_message, vnic_message
from manager.domain.vmorder import guest_order, source_guest_order
from manager.domain.vnic import (
    DirectMode,
    PciAddress,
    Qbg,
    Qbh,
    Vnic,
    VnicKind,
    attachment_kind,
    check_vnic,
    check_vnics,
)
from manager.service.vms import bulk_names
from manager.service.vnic_messages import agent_vnic, attach_violation, pci_message, runtime, spec_violation
from virtfleet.errors import InvalidArgument
from virtfleet.v1 import vm_pb2, vms_pb2


def nic(name="nic1", kind=VnicKind.BRIDGE, **kw) -> Vnic:
    return Vnic(name=name, kind=kind, **kw)


def test_kind_follows_the_target_and_direct_defaults_to_vepa():
    assert attachment_kind("ovirtmgmt", None, None, "n") is VnicKind.BRIDGE
    assert attachment_kind(None, "default", None, "n") is VnicKind.VIRTUAL_NETWORK
    assert attachment_kind("vmnet", None, "eth1", "n") is VnicKind.DIRECT
    d = check_vnic(nic(kind=VnicKind.DIRECT, direct_nic="eth1", network="vmnet"), "n")
    assert (d.kind, d.direct_mode, d.network) == (VnicKind.DIRECT, DirectMode.VEPA, "vmnet")


@pytest.mark.parametrize("targets", [(None, None, None), ("a", "b", None), (None, "a", "eth0")])
def test_a_vnic_attaches_to_exactly_one_target(targets):
    with pytest.raises(InvalidArgument) as err:
        attachment_kind(*targets, "n")
    assert err.value.field == "n"


@pytest.mark.parametrize("bad, field", [
    (nic(kind=VnicKind.DIRECT, direct_nic="a/b"), "n.direct_nic"),
    (nic(kind=VnicKind.DIRECT, direct_nic="a-very-long-device"), "n.direct_nic"),
    (nic(network="a", virtualport=Qbh("p")), "n.mode"),
    (nic(virtual_network="a", kind=VnicKind.VIRTUAL_NETWORK, direct_mode=DirectMode.BRIDGE), "n.mode"),
    (nic(name="", network="a"), "n.name"),
    (nic(name="a.b", network="a"), "n.name"),
])
def test_bad_vnic_names_its_field(bad, field):
    with pytest.raises(InvalidArgument) as err:
        check_vnic(bad, "n")
    assert err.value.field == field


def test_names_and_pci_addresses_are_each_one_vnics_own():
    pci = PciAddress.parse("0000:00:03.0")
    for vnics, field in (([nic("a", network="x"), nic("a", network="x")], "nics[1].name"),
                         ([nic("a", network="x", pci=pci), nic("b", network="x", pci=pci)], "nics[1].pci_address")):
        with pytest.raises(InvalidArgument) as err:
            check_vnics(vnics)
        assert err.value.field == field


@pytest.mark.parametrize("given, field", [
    (vms_pb2.Nic(name="n", network="a", mac="02:00:00:00:00"), "nics[0].mac"),
    (vms_pb2.Nic(name="n", network="a", mac="01:00:5e:00:00:01"), "nics[0].mac"),
    (vms_pb2.Nic(name="n", network="a", pci_address="0000:00:03.9"), "nics[0].pci_address"),
    (vms_pb2.Nic(name="n"), "nics[0]"),
])
def test_the_api_refuses_what_cannot_be_typed_naming_the_field(given, field):
    with pytest.raises(InvalidArgument) as err:
        vnic_from_message(given, "nics[0]")
    assert err.value.field == field


def test_a_contract_nic_round_trips_with_its_mac_canonical():
    m = vms_pb2.Nic(name="nic3", direct_nic="eth1", network="vmnet", mode=vm_pb2.DIRECT_MODE_PRIVATE,
                    mac="02-AB-00-00-00-01", pci_address="0000:00:07.0",
                    qbg=vm_pb2.Virtualport8021Qbg(managerid=11, typeid=5, typeidversion=1))
    v = vnic_from_message(m, "nic")
    assert (v.kind, v.direct_mode, v.mac, v.pci, v.virtualport) == (
        VnicKind.DIRECT, DirectMode.PRIVATE, "02:ab:00:00:00:01", PciAddress(0, 0, 7, 0), Qbg(11, 5, 1, ""))
    back = vnic_message(v)
    assert (back.mac, back.pci_address, back.mode, back.qbg.managerid) == (
        "02:ab:00:00:00:01", "0000:00:07.0", vm_pb2.DIRECT_MODE_PRIVATE, 11)


def test_bulk_names_are_numbered_and_checked():
    assert bulk_names("web", 3) == ["web-1", "web-2", "web-3"]
    for name, count, field in (("web", 0, "count"), ("-x", 1, "name"), ("a" * 62, 10, "name")):
        with pytest.raises(InvalidArgument) as err:
            bulk_names(name, count)
        assert err.value.field == field


def test_guest_order_is_pci_then_domain_xml_position():
    nics = [nic("c", position=0), nic("b", position=1, pci=PciAddress.parse("0000:00:04.0")),
            nic("a", position=2, pci=PciAddress.parse("0000:00:03.0")), nic("d", position=3)]
    assert [n.name for n in guest_order(nics)] == ["a", "b", "c", "d"]
    assert [n.name for n in source_guest_order([nic("nic10"), nic("nic2")])] == ["nic2", "nic10"]


def test_pci_text_round_trip():
    p = PciAddress.parse("0000:01:1f.7")
    assert str(p) == "0000:01:1f.7" and pci_message(p).slot == 0x1F
    with pytest.raises(ValueError):
        PciAddress.parse("0000:00:3.0")


def test_agent_view_of_each_kind():
    bridge = agent_vnic(check_vnic(nic(network="vmnet", mac="02:00:00:00:00:01", pci=PciAddress(0, 0, 3, 0)), "n"),
                        vlan=100)
    assert (bridge.kind, bridge.source, bridge.vlan, bridge.pci.slot, bridge.mac) == (
        vm_pb2.VNIC_KIND_BRIDGE, "vmnet", 100, 3, "02:00:00:00:00:01")
    virt = agent_vnic(check_vnic(nic(kind=VnicKind.VIRTUAL_NETWORK, virtual_network="default"), "n"), None)
    assert (virt.kind, virt.source, virt.HasField("pci")) == (vm_pb2.VNIC_KIND_VIRTUAL_NETWORK, "default", False)
    qbg = agent_vnic(check_vnic(nic(kind=VnicKind.DIRECT, direct_nic="eth1", direct_mode=DirectMode.PRIVATE,
                                    virtualport=Qbg(11, 5, 1)), "n"), 7)
    assert (qbg.kind, qbg.source, qbg.mode, qbg.qbg.managerid, qbg.vlan) == (
        vm_pb2.VNIC_KIND_DIRECT, "eth1", vm_pb2.DIRECT_MODE_PRIVATE, 11, 7)
    qbh = agent_vnic(check_vnic(nic(kind=VnicKind.DIRECT, direct_nic="eth1", virtualport=Qbh("p")), "n"), None)
    assert (qbh.mode, qbh.qbh.profileid) == (vm_pb2.DIRECT_MODE_VEPA, "p")


def test_runtime_keeps_only_our_vnics():
    status = vm_pb2.VmStatus(nics=[
        vm_pb2.VNicRuntime(name="nic1", host_device="vnet3", pci=vm_pb2.PciAddress(slot=3)),
        vm_pb2.VNicRuntime(name="nic2", host_device=""),
        vm_pb2.VNicRuntime(name="", host_device="vnet9")])
    assert [(r.name, str(r.pci) if r.pci else None, r.host_device) for r in runtime(status)] == [
        ("nic1", "0000:00:03.0", "vnet3"), ("nic2", None, None)]


@pytest.mark.parametrize("agent_field, admin_field", [
    ("spec.nics[2].qbg.managerid", "nics[2].virtualport.managerid"),
    ("spec.nics[1].qbh.profileid", "nics[1].virtualport.profileid"),
    ("spec.nics[2].vlan", "nics[2].network"),
    ("spec.nics[0].pci.slot", "nics[0].pci_address"),
    ("spec.nics[0].source", "nics[0].network"),
    ("spec.nics[1].source", "nics[1].virtual_network"),
    ("spec.nics[2].source", "nics[2].direct_nic"),
    ("spec.nics[1].mac", "nics[1].mac"),
    ("spec.nics[1].kind", "nics[1]"),
    ("spec.memory_mib", "memory_mib"),
])
def test_an_agents_field_path_becomes_the_admins(agent_field, admin_field):
    vnics = [nic("a", network="n"), nic("b", kind=VnicKind.VIRTUAL_NETWORK, virtual_network="v"),
             nic("c", kind=VnicKind.DIRECT, direct_nic="eth1")]
    mapped = spec_violation(InvalidArgument(agent_field, "refused"), vnics)
    assert (mapped.field, mapped.description) == (admin_field, "refused")
    plugged = attach_violation(InvalidArgument("nic.qbg.typeid", "refused"), vnics[2])
    assert plugged.field == "nic.virtualport.typeid"
