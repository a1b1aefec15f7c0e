"""Validation of VM specs and virtual networks: each refusal names the vNIC and the field."""
from __future__ import annotations

from dataclasses import replace

import pytest

from agent.virt.spec import (Bandwidth, BandwidthLimit, DirectMode, FilterRef, NetworkMode, NicKind, PciAddress, Qbg,
                             Qbh, VirtualNetworkSpec, VmSpec, VNicSpec)
from agent.virt.validation import (HostNicUse, check_filters_exist, check_host_conflicts, complete_nic, complete_vm,
                                   validate_network, validate_nic, validate_vm)
from virtfleet.errors import FailedPrecondition, InvalidArgument

QBG_NIC = VNicSpec("uplink", NicKind.DIRECT, "eth0.2", mode=DirectMode.VEPA, vlan=2, virtualport=Qbg(11, 1193047, 2))


def vm(*nics: VNicSpec, **kw) -> VmSpec:
    return VmSpec(**{"name": "vm1", "memory_mib": 64, "vcpus": 1, "nics": nics, **kw})


def refusal(spec: VmSpec) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        validate_vm(spec)
    return err.value


def qbg(**changes) -> VNicSpec:
    return replace(QBG_NIC, virtualport=replace(QBG_NIC.virtualport, **changes))


def test_the_seed_example_is_accepted():
    validate_vm(vm(replace(QBG_NIC, virtualport=Qbg(11, 1193047, 2, "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")),
                   VNicSpec("nic2", NicKind.DIRECT, "eth0", mode=DirectMode.PRIVATE, virtualport=Qbh("finance"))))


@pytest.mark.parametrize("managerid", [0, 256, 300])
def test_802_1qbg_managerid_is_1_to_255(managerid):
    err = refusal(vm(QBG_NIC, qbg(managerid=managerid)))
    assert err.field == "spec.nics[1].qbg.managerid"
    assert "'uplink'" in err.description and "0 is reserved" in err.description


@pytest.mark.parametrize("managerid", [1, 255])
def test_802_1qbg_managerid_bounds_are_accepted(managerid):
    validate_vm(vm(qbg(managerid=managerid)))


def test_802_1qbg_typeid_fits_24_bits():
    validate_vm(vm(qbg(typeid=(1 << 24) - 1)))
    assert refusal(vm(qbg(typeid=1 << 24))).field == "spec.nics[0].qbg.typeid"


def test_802_1qbg_typeidversion_fits_8_bits():
    validate_vm(vm(qbg(typeidversion=255)))
    assert refusal(vm(qbg(typeidversion=256))).field == "spec.nics[0].qbg.typeidversion"


def test_802_1qbg_instanceid_is_a_uuid():
    assert refusal(vm(qbg(instanceid="not-a-uuid"))).field == "spec.nics[0].qbg.instanceid"


def test_802_1qbg_needs_a_non_zero_vlan():
    err = refusal(vm(replace(QBG_NIC, vlan=0)))
    assert err.field == "spec.nics[0].vlan" and "non-zero" in err.description


def test_802_1qbh_needs_a_profileid():
    nic = VNicSpec("p", NicKind.DIRECT, "eth0", virtualport=Qbh(""))
    assert refusal(vm(nic)).field == "spec.nics[0].qbh.profileid"
    assert refusal(vm(replace(nic, virtualport=Qbh("x" * 40)))).field == "spec.nics[0].qbh.profileid"


def test_virtualport_only_on_direct_vnics():
    err = refusal(vm(VNicSpec("b", NicKind.BRIDGE, "br0", virtualport=Qbh("finance"))))
    assert err.field == "spec.nics[0].qbh"


def test_mode_only_on_direct_vnics():
    assert refusal(vm(VNicSpec("b", NicKind.BRIDGE, "br0", mode=DirectMode.VEPA))).field == "spec.nics[0].mode"


@pytest.mark.parametrize("nic, field", [
    (VNicSpec("", NicKind.BRIDGE, "br0"), "name"),
    (VNicSpec("nic 1", NicKind.BRIDGE, "br0"), "name"),
    (VNicSpec("nic1", None, "br0"), "kind"),
    (VNicSpec("nic1", NicKind.BRIDGE, ""), "source"),
    (VNicSpec("nic1", NicKind.DIRECT, "a-very-long-nic-name"), "source"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", model="virtio-what"), "model"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", mac="52:54:00:00:00"), "mac"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", mac="01:00:5e:00:00:01"), "mac"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", vlan=4095), "vlan"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", pci=PciAddress(0, 0, 32, 0)), "pci.slot"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", pci=PciAddress(0, 0, 3, 8)), "pci.function"),
    (VNicSpec("nic1", NicKind.BRIDGE, "br0", pci=PciAddress(0, 0, 0, 0)), "pci.slot"),
])
def test_bad_vnic_fields_are_named(nic, field):
    assert refusal(vm(nic)).field == f"spec.nics[0].{field}"


@pytest.mark.parametrize("first, second, field", [
    (VNicSpec("a", NicKind.BRIDGE, "br0"), VNicSpec("a", NicKind.BRIDGE, "br1"), "name"),
    (VNicSpec("a", NicKind.BRIDGE, "br0", mac="52:54:00:00:00:01"),
     VNicSpec("b", NicKind.BRIDGE, "br0", mac="52:54:00:00:00:01"), "mac"),
    (VNicSpec("a", NicKind.BRIDGE, "br0", pci=PciAddress(0, 0, 3, 0)),
     VNicSpec("b", NicKind.BRIDGE, "br0", pci=PciAddress(0, 0, 3, 0)), "pci"),
    (VNicSpec("a", NicKind.DIRECT, "eth1", mode=DirectMode.PASSTHROUGH),
     VNicSpec("b", NicKind.DIRECT, "eth1", mode=DirectMode.VEPA), "source"),
    (VNicSpec("a", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE),
     VNicSpec("b", NicKind.DIRECT, "eth1", mode=DirectMode.PASSTHROUGH), "source"),
    (qbg(instanceid="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"),
     replace(qbg(instanceid="09B11C53-8B5C-4EEB-8F00-D84EAA0AAA4F"), name="other"), "qbg.instanceid"),
])
def test_a_vnics_identity_is_its_own(first, second, field):
    err = refusal(vm(first, second))
    assert err.field == f"spec.nics[1].{field}"


@pytest.mark.parametrize("changes, field", [
    ({"name": ""}, "spec.name"), ({"name": "a/b"}, "spec.name"), ({"uuid": "xyz"}, "spec.uuid"),
    ({"memory_mib": 0}, "spec.memory_mib"), ({"vcpus": 0}, "spec.vcpus"), ({"domain_type": "xen"}, "spec.domain_type"),
])
def test_bad_vm_fields_are_named(changes, field):
    assert refusal(replace(vm(), **changes)).field == field


def test_several_macvtaps_may_share_a_host_nic():
    validate_vm(vm(VNicSpec("a", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE),
                   VNicSpec("b", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE)))


def test_completion_generates_only_missing_instance_ids():
    given = qbg(instanceid="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
    done = complete_vm(vm(given, replace(QBG_NIC, name="new")), new_uuid=lambda: "11111111-2222-3333-4444-555555555555")
    assert [n.virtualport.instanceid for n in done.nics] == ["09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f",
                                                            "11111111-2222-3333-4444-555555555555"]


# --- host-wide rules -----------------------------------------------------------------------------

PASSTHROUGH = VNicSpec("pt", NicKind.DIRECT, "eth1", mode=DirectMode.PASSTHROUGH)


def test_a_passed_through_device_serves_one_guest_and_the_refusal_names_the_holder():
    with pytest.raises(FailedPrecondition) as err:
        check_host_conflicts("vm2", [("spec.nics[0]", PASSTHROUGH)],
                             [HostNicUse("vm1", "eth1", DirectMode.PASSTHROUGH)])
    assert "'vm1'" in err.value.message and "eth1" in err.value.message and "'pt'" in err.value.message


def test_passthrough_is_refused_while_another_guest_has_a_macvtap_on_the_device():
    with pytest.raises(FailedPrecondition, match="'vm1'"):
        check_host_conflicts("vm2", [("nic", PASSTHROUGH)], [HostNicUse("vm1", "eth1", DirectMode.BRIDGE)])


def test_macvtap_on_a_device_passed_through_elsewhere_is_refused():
    nic = VNicSpec("m", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE)
    with pytest.raises(FailedPrecondition, match="'vm1'"):
        check_host_conflicts("vm2", [("nic", nic)], [HostNicUse("vm1", "eth1", DirectMode.PASSTHROUGH)])


def test_shared_macvtap_modes_and_the_vms_own_devices_are_fine():
    nic = VNicSpec("m", NicKind.DIRECT, "eth1", mode=DirectMode.BRIDGE)
    check_host_conflicts("vm2", [("nic", nic)], [HostNicUse("vm1", "eth1", DirectMode.BRIDGE)])
    check_host_conflicts("vm1", [("nic", PASSTHROUGH)], [HostNicUse("vm1", "eth1", DirectMode.PASSTHROUGH)])
    check_host_conflicts("vm2", [("nic", PASSTHROUGH)], [HostNicUse("vm1", "eth0", DirectMode.PASSTHROUGH)])


def test_a_vsi_instance_id_belongs_to_one_vnic_on_the_host():
    nic = qbg(instanceid="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
    with pytest.raises(FailedPrecondition, match="'vm1'"):
        check_host_conflicts("vm2", [("nic", nic)],
                             [HostNicUse("vm1", "eth0.2", DirectMode.VEPA, "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")])


# --- virtual networks ----------------------------------------------------------------------------

NAT = VirtualNetworkSpec("nat1", NetworkMode.NAT, bridge="virbr10", address="192.168.100.1", prefixlen=24,
                         dhcp_start="192.168.100.10", dhcp_end="192.168.100.99")


@pytest.mark.parametrize("changes, field", [
    ({"name": ""}, "network.name"),
    ({"mode": None}, "network.mode"),
    ({"bridge": "bridge-name-too-long"}, "network.bridge"),
    ({"address": ""}, "network.address"),
    ({"address": "192.168.100.300"}, "network.address"),
    ({"address": "192.168.100.0"}, "network.address"),
    ({"prefixlen": 31}, "network.prefixlen"),
    ({"dhcp_end": ""}, "network.dhcp_end"),
    ({"dhcp_start": "192.168.101.10"}, "network.dhcp_start"),
    ({"dhcp_end": "192.168.100.255"}, "network.dhcp_end"),
    ({"dhcp_start": "192.168.100.99", "dhcp_end": "192.168.100.10"}, "network.dhcp_end"),
    ({"dhcp_start": "192.168.100.1"}, "network.dhcp_start"),
    ({"mode": NetworkMode.ISOLATED, "forward_dev": "eth0"}, "network.forward_dev"),
    ({"mode": NetworkMode.BRIDGED}, "network.address"),
    ({"mode": NetworkMode.BRIDGED, "address": "", "prefixlen": 0, "dhcp_start": "", "dhcp_end": "",
      "bridge": ""}, "network.bridge"),
])
def test_bad_network_fields_are_named(changes, field):
    with pytest.raises(InvalidArgument) as err:
        validate_network(replace(NAT, **changes))
    assert err.value.field == field


# --- naming the vNIC whose host device is missing ------------------------------------------------

def runtime(name: str, kind: NicKind, source: str):
    from agent.virt.spec import VNicRuntime

    return VNicRuntime(name=name, mac="", host_device="", pci=None, alias=f"ua-{name}", kind=kind, source=source)


def test_missing_bridge_or_host_nic_names_the_vnic():
    from agent.virt.validation import missing_host_device

    nics = [("nics[0]", runtime("nic1", NicKind.BRIDGE, "ovirtmgmt")),
            ("nics[1]", runtime("nic2", NicKind.BRIDGE, "eth0")),
            ("nics[2]", runtime("nic3", NicKind.DIRECT, "eth9"))]
    devices, bridges = {"ovirtmgmt", "eth0"}, {"ovirtmgmt"}
    assert missing_host_device(nics, devices, bridges) == "nics[1].source: vNIC 'nic2': host bridge 'eth0' is not a bridge"
    assert missing_host_device(nics[2:], devices, bridges) == ("nics[2].source: vNIC 'nic3': host NIC 'eth9' does not "
                                                               "exist on this host")
    assert missing_host_device(nics[:1], devices, bridges) is None
    assert missing_host_device([("nic", runtime("n", NicKind.VIRTUAL_NETWORK, "default"))], set(), set()) is None


def test_host_devices_reads_this_namespaces_sysfs(tmp_path):
    from agent.virt.hostdevs import host_devices

    (tmp_path / "br0" / "bridge").mkdir(parents=True)
    (tmp_path / "eth0").mkdir()
    assert host_devices(tmp_path) == ({"br0", "eth0"}, {"br0"})


# --- MACs in any form the shared parser reads (virtfleet.macaddr) --------------------------------

@pytest.mark.parametrize("mac", ["52-54-00-AB-CD-EF", "525400abcdef", "52:54:00:AB:CD:EF"])
def test_a_vnic_mac_in_any_form_is_accepted_and_used_canonical(mac):
    spec = vm(VNicSpec("nic1", NicKind.BRIDGE, "br0", mac=mac))
    validate_vm(spec)
    assert complete_vm(spec).nics[0].mac == "52:54:00:ab:cd:ef"


def test_one_mac_in_two_forms_is_one_mac():
    err = refusal(vm(VNicSpec("a", NicKind.BRIDGE, "br0", mac="52:54:00:00:00:01"),
                     VNicSpec("b", NicKind.BRIDGE, "br0", mac="52-54-00-00-00-01")))
    assert err.field == "spec.nics[1].mac"


# --- vNIC profile settings (issue 15) ---------------------------------------------------------

def bridged(**kw) -> VNicSpec:
    return VNicSpec("nic1", NicKind.BRIDGE, "br0", **kw)


def qos(inbound=None, outbound=None) -> Bandwidth:
    return Bandwidth(inbound and BandwidthLimit(*inbound), outbound and BandwidthLimit(*outbound))


@pytest.mark.parametrize("nic, field", [
    (bridged(bandwidth=qos(outbound=(1 << 31 | 1,))), "bandwidth.outbound.average"),
    (bridged(bandwidth=qos(inbound=(0, 100))), "bandwidth.inbound.average"),
    (bridged(bandwidth=qos(inbound=(0, 0, 100))), "bandwidth.inbound.average"),
    (bridged(bandwidth=qos(inbound=(100, 50))), "bandwidth.inbound.peak"),
    (bridged(bandwidth=qos(inbound=(100, (1 << 32) - 1))), "bandwidth.inbound.peak"),
    (bridged(bandwidth=qos(outbound=(100, 0, (1 << 31) + 1))), "bandwidth.outbound.burst"),
    (bridged(filter=FilterRef("")), "filter.name"),
    (bridged(filter=FilterRef("clean traffic")), "filter.name"),
    (bridged(filter=FilterRef("clean-traffic", (("IP", "10.0.0.300"),))), "filter.parameters[0].value"),
    (bridged(filter=FilterRef("clean-traffic", (("IP", "10.0.0.1"), ("MAC", "nope")))), "filter.parameters[1].value"),
    (bridged(filter=FilterRef("clean-traffic", (("IP", "$(reboot)"),))), "filter.parameters[0].value"),
    (bridged(filter=FilterRef("clean-traffic", (("1P", "10.0.0.1"),))), "filter.parameters[0].name"),
    (bridged(filter=FilterRef("clean-traffic", (("IP", "10.0.0.1"),) * 65)), "filter.parameters"),
    (VNicSpec("nic1", NicKind.DIRECT, "eth0", filter=FilterRef("clean-traffic")), "filter.name"),
    (VNicSpec("nic1", NicKind.DIRECT, "eth0", port_mirroring=True), "port_mirroring"),
    (VNicSpec("nic1", NicKind.VIRTUAL_NETWORK, "default", port_mirroring=True), "port_mirroring"),
    (VNicSpec("nic1", NicKind.DIRECT, "eth0", isolated=True), "isolated"),
    (bridged(mtu=67), "mtu"),
    (bridged(mtu=65536), "mtu"),
    (bridged(mtu=9000, model="e1000"), "mtu"),
    (VNicSpec("nic1", NicKind.DIRECT, "eth0", mtu=9000), "mtu"),
    (VNicSpec("nic1", NicKind.DIRECT, "eth0", mode=DirectMode.PASSTHROUGH, link_down=True), "link_down"),
])
def test_bad_profile_settings_are_refused_naming_the_field(nic, field):
    assert refusal(vm(nic)).field == f"spec.nics[0].{field}"
    with pytest.raises(InvalidArgument) as err:
        validate_nic(nic, "nic")
    assert err.value.field == f"nic.{field}"


@pytest.mark.parametrize("nic", [
    bridged(bandwidth=qos((1, 1, 1), (1 << 31, 1 << 31, 1 << 31))),
    bridged(bandwidth=qos(outbound=(5000,))),
    bridged(filter=FilterRef("clean-traffic", (("IP", "192.0.2.7"), ("IP", "2001:db8::7"),
                                               ("MAC", "52:54:00:AA:BB:CC"), ("DHCPSERVER", "192.0.2.1")))),
    bridged(filter=FilterRef("no-mac-spoofing"), port_mirroring=True, isolated=True, mtu=68, link_down=True),
    VNicSpec("nic1", NicKind.VIRTUAL_NETWORK, "default", mtu=65535, filter=FilterRef("clean-traffic")),
    VNicSpec("nic1", NicKind.DIRECT, "eth0", mode=DirectMode.BRIDGE, link_down=True, bandwidth=qos((10,))),
])
def test_good_profile_settings_are_accepted(nic):
    validate_vm(vm(nic))


def test_filter_parameters_are_made_canonical():
    nic = complete_nic(bridged(filter=FilterRef("clean-traffic", (("MAC", "52-54-00-AA-BB-CC"),
                                                                  ("IP", "2001:DB8:0:0::7")))))
    assert nic.filter.parameters == (("MAC", "52:54:00:aa:bb:cc"), ("IP", "2001:db8::7"))


def test_a_filter_this_hosts_libvirt_lacks_is_refused_naming_the_vnic_and_field():
    nics = [("spec.nics[0]", bridged(filter=FilterRef("clean-traffic"))),
            ("spec.nics[1]", VNicSpec("nic2", NicKind.BRIDGE, "br0", filter=FilterRef("vdsm-no-mac-spoofing")))]
    with pytest.raises(InvalidArgument) as err:
        check_filters_exist(nics, {"clean-traffic", "no-mac-spoofing"})
    assert err.value.field == "spec.nics[1].filter.name"
    assert "nic2" in str(err.value) and "vdsm-no-mac-spoofing" in str(err.value)
    check_filters_exist(nics[:1], {"clean-traffic"})


def test_without_the_nwfilter_driver_every_filter_is_refused_and_says_why():
    with pytest.raises(InvalidArgument, match="nwfilter driver"):
        check_filters_exist([("nic", bridged(filter=FilterRef("clean-traffic")))], set())
