"""Domain and virtual-network XML for every vNIC kind, direct mode, virtualport and network mode.

Each XML the builders produce is checked with libvirt's own schema (virt-xml-validate)
and read back with the parser the agent uses on live XML.
"""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from agent.virt.domxml import build_domain_xml, build_interface_xml
from agent.virt.netxml import build_network_xml, parse_network_xml
from agent.virt.readback import parse_domain
from agent.virt.mirroring import mirrored_nics
from agent.virt.spec import (Bandwidth, BandwidthLimit, BootSource, DirectMode, FilterRef, NetworkMode, NicKind,
                             PciAddress, Qbg, Qbh, VirtualNetworkSpec, VmSpec, VNicSpec)
from agent.virt.validation import complete_vm, validate_network, validate_vm

VALIDATOR = shutil.which("virt-xml-validate")


def assert_schema_valid(tmp_path: Path, text: str, schema: str) -> None:
    if VALIDATOR is None:
        pytest.skip("virt-xml-validate is not installed (Debian package libvirt-clients + libxml2-utils)")
    path = tmp_path / f"{schema}.xml"
    path.write_text(text)
    result = subprocess.run([VALIDATOR, str(path), schema], capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stderr}\n{text}"


def vm_with(*nics: VNicSpec, **kw) -> VmSpec:
    spec = VmSpec(name="vm1", memory_mib=64, vcpus=1, nics=nics, **kw)
    validate_vm(spec)
    return complete_vm(spec)


NIC_CASES = {
    "bridge": VNicSpec("nic1", NicKind.BRIDGE, "ovirtmgmt"),
    "network": VNicSpec("nic1", NicKind.VIRTUAL_NETWORK, "default"),
    **{f"direct-{m.value}": VNicSpec("nic1", NicKind.DIRECT, "eth0", mode=m) for m in DirectMode},
    "direct-default-mode": VNicSpec("nic1", NicKind.DIRECT, "eth0"),
    "direct-vepa-802.1Qbg": VNicSpec("nic1", NicKind.DIRECT, "eth0.2", mode=DirectMode.VEPA, vlan=2,
                                     virtualport=Qbg(11, 1193047, 2, "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")),
    "direct-bridge-802.1Qbg-max": VNicSpec("nic1", NicKind.DIRECT, "eth0.4094", mode=DirectMode.BRIDGE, vlan=4094,
                                           virtualport=Qbg(255, (1 << 24) - 1, 255)),
    "direct-private-802.1Qbh": VNicSpec("nic1", NicKind.DIRECT, "eth0", mode=DirectMode.PRIVATE,
                                        virtualport=Qbh("finance")),
    "direct-passthrough-802.1Qbh": VNicSpec("nic1", NicKind.DIRECT, "eth1", mode=DirectMode.PASSTHROUGH,
                                            virtualport=Qbh("finance")),
    "e1000-with-mac-and-pci": VNicSpec("nic1", NicKind.BRIDGE, "br0", model="e1000", mac="52:54:00:aa:bb:cc",
                                       pci=PciAddress(0, 0, 0x1f, 7)),
    "bridge-with-every-profile-setting": VNicSpec(
        "nic1", NicKind.BRIDGE, "br0", bandwidth=Bandwidth(BandwidthLimit(1000, 2000, 512), BandwidthLimit(3000)),
        filter=FilterRef("clean-traffic", (("IP", "192.0.2.10"), ("MAC", "52:54:00:aa:bb:cc"))),
        port_mirroring=True, isolated=True, mtu=9000, link_down=True),
    "network-with-qos-and-filter": VNicSpec("nic1", NicKind.VIRTUAL_NETWORK, "default",
                                            bandwidth=Bandwidth(outbound=BandwidthLimit(1 << 31)),
                                            filter=FilterRef("no-mac-spoofing"), mtu=1400),
    "direct-with-qos-and-link-down": VNicSpec("nic1", NicKind.DIRECT, "eth0", bandwidth=Bandwidth(BandwidthLimit(1)),
                                              link_down=True),
}


@pytest.mark.parametrize("case", sorted(NIC_CASES))
@pytest.mark.parametrize("domain_type", ["kvm", "qemu"])
def test_every_vnic_kind_and_mode_passes_libvirts_schema(tmp_path, case, domain_type):
    xml = build_domain_xml(vm_with(NIC_CASES[case]), domain_type)
    assert_schema_valid(tmp_path, xml, "domain")
    assert ET.fromstring(xml).get("type") == domain_type


def test_direct_vnic_names_host_nic_and_mode(tmp_path):
    xml = build_domain_xml(vm_with(*(VNicSpec(f"n{m.value}", NicKind.DIRECT, "eth0", mode=m) for m in DirectMode
                                     if m != DirectMode.PASSTHROUGH)), "kvm")
    sources = [(s.get("dev"), s.get("mode")) for s in ET.fromstring(xml).iter("source")]
    assert sources == [("eth0", "vepa"), ("eth0", "bridge"), ("eth0", "private")]


def test_802_1qbg_parameters_are_written_as_given():
    nic = NIC_CASES["direct-vepa-802.1Qbg"]
    params = ET.fromstring(build_interface_xml(nic)).find("virtualport[@type='802.1Qbg']/parameters")
    assert params.attrib == {"managerid": "11", "typeid": "1193047", "typeidversion": "2",
                             "instanceid": "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"}


def test_802_1qbg_instanceid_is_generated_per_vsi_instance():
    nic = VNicSpec("a", NicKind.DIRECT, "eth0.2", vlan=2, virtualport=Qbg(11, 1, 1))
    spec = vm_with(nic, VNicSpec("b", NicKind.DIRECT, "eth0.2", vlan=2, virtualport=Qbg(11, 1, 1)))
    ids = [n.virtualport.instanceid for n in spec.nics]
    assert all(ids) and len(set(ids)) == 2
    again = vm_with(nic)
    assert again.nics[0].virtualport.instanceid not in ids


def test_802_1qbh_profile_is_written():
    params = ET.fromstring(build_interface_xml(NIC_CASES["direct-private-802.1Qbh"])).find(
        "virtualport[@type='802.1Qbh']/parameters")
    assert params.attrib == {"profileid": "finance"}


def test_libvirt_names_the_taps_so_no_target_dev_is_written():
    xml = build_domain_xml(vm_with(VNicSpec("nic1", NicKind.BRIDGE, "br0")), "kvm")
    assert ET.fromstring(xml).find("devices/interface/target") is None


def test_diskless_guest_gets_no_boot_rom_unless_asked():
    nic = VNicSpec("nic1", NicKind.BRIDGE, "br0")
    no_rom = ET.fromstring(build_domain_xml(vm_with(nic), "kvm"))
    assert no_rom.find("devices/interface/rom").get("enabled") == "no"
    with_rom = ET.fromstring(build_domain_xml(vm_with(nic, nic_boot_rom=True), "kvm"))
    assert with_rom.find("devices/interface/rom") is None


def test_acpi_is_on_for_hot_plug_and_graceful_shutdown():
    """Measured on QEMU 7.2: without ACPI, device_add fails with "Bus 'pci.0' does not support hotplugging"."""
    assert ET.fromstring(build_domain_xml(vm_with(), "kvm")).find("features/acpi") is not None


def test_no_cpu_mode_is_requested():
    """host-passthrough and host-model fail under nested KVM; the default CPU works."""
    assert ET.fromstring(build_domain_xml(vm_with(), "kvm")).find("cpu") is None


def test_vnics_keep_their_order_and_read_back_by_name(tmp_path):
    nics = (VNicSpec("nic2", NicKind.BRIDGE, "ovirtmgmt", mac="52:54:00:00:00:02", pci=PciAddress(0, 0, 4, 0)),
            VNicSpec("nic1", NicKind.DIRECT, "eth0", mode=DirectMode.BRIDGE, mac="52:54:00:00:00:01"),
            VNicSpec("nic3", NicKind.VIRTUAL_NETWORK, "default"))
    spec = vm_with(*nics, uuid="8d2bde9b-2c8e-4c44-b1fb-3b0a3d1a6a10")
    xml = build_domain_xml(spec, "qemu")
    assert_schema_valid(tmp_path, xml, "domain")
    back = parse_domain(xml)
    assert (back.name, back.uuid, back.memory_mib, back.vcpus) == ("vm1", spec.uuid, 64, 1)
    assert [(n.name, n.kind, n.source, n.mac, n.pci) for n in back.nics] == [
        ("nic2", NicKind.BRIDGE, "ovirtmgmt", "52:54:00:00:00:02", PciAddress(0, 0, 4, 0)),
        ("nic1", NicKind.DIRECT, "eth0", "52:54:00:00:00:01", None),
        ("nic3", NicKind.VIRTUAL_NETWORK, "default", "", None),
    ]
    assert back.nics[1].mode == DirectMode.BRIDGE


def test_live_xml_read_back_reports_tap_pci_and_alias():
    live = """<domain type='kvm'><name>vm1</name><uuid>8d2bde9b-2c8e-4c44-b1fb-3b0a3d1a6a10</uuid>
      <memory unit='KiB'>65536</memory><vcpu placement='static'>2</vcpu><devices>
      <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='ovirtmgmt'/>
        <target dev='vnet0'/><model type='virtio'/><alias name='ua-nic1'/>
        <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></interface>
      <interface type='direct'><mac address='52:54:00:00:00:02'/><source dev='eth0' mode='vepa'/>
        <virtualport type='802.1Qbg'><parameters managerid='11' typeid='1193047' typeidversion='2'
          instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>
        <target dev='macvtap0'/><model type='virtio'/><alias name='net1'/>
        <address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></interface>
      </devices></domain>"""
    vm = parse_domain(live)
    assert vm.memory_mib == 64 and vm.vcpus == 2
    first, second = vm.nics
    assert (first.name, first.host_device, str(first.pci), first.alias) == ("nic1", "vnet0", "0000:00:03.0",
                                                                             "ua-nic1")
    assert (second.name, second.host_device, second.pci, second.alias) == ("", "macvtap0",
                                                                          PciAddress(0, 0, 10, 0), "net1")
    assert second.mode == DirectMode.VEPA and second.vsi_instanceid == "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"


NETWORK_CASES = {
    "nat": VirtualNetworkSpec("nat1", NetworkMode.NAT, bridge="virbr10", address="192.168.100.1", prefixlen=24,
                              dhcp_start="192.168.100.10", dhcp_end="192.168.100.99"),
    "nat-on-one-nic": VirtualNetworkSpec("nat2", NetworkMode.NAT, address="192.168.101.1", prefixlen=24,
                                         forward_dev="eth0"),
    "routed": VirtualNetworkSpec("routed1", NetworkMode.ROUTED, bridge="virbr11", address="198.51.100.1",
                                 prefixlen=25, dhcp_start="198.51.100.2", dhcp_end="198.51.100.100"),
    "bridged": VirtualNetworkSpec("bridged1", NetworkMode.BRIDGED, bridge="ovirtmgmt"),
    "isolated": VirtualNetworkSpec("iso1", NetworkMode.ISOLATED, bridge="virbr12", address="10.10.0.1",
                                   prefixlen=24, dhcp_start="10.10.0.100", dhcp_end="10.10.0.200"),
    "isolated-no-address": VirtualNetworkSpec("iso2", NetworkMode.ISOLATED, bridge="virbr13"),
    "open": VirtualNetworkSpec("open1", NetworkMode.OPEN, bridge="virbr14", address="10.20.0.1", prefixlen=16),
}


@pytest.mark.parametrize("case", sorted(NETWORK_CASES))
def test_every_virtual_network_mode_passes_libvirts_schema_and_reads_back(tmp_path, case):
    net = NETWORK_CASES[case]
    validate_network(net)
    xml = build_network_xml(net)
    assert_schema_valid(tmp_path, xml, "network")
    assert parse_network_xml(xml) == net


def test_forward_element_per_mode():
    forward = {case: ET.fromstring(build_network_xml(n)).find("forward") for case, n in NETWORK_CASES.items()}
    assert forward["nat"].get("mode") == "nat"
    assert forward["routed"].get("mode") == "route"
    assert forward["bridged"].get("mode") == "bridge"
    assert forward["open"].get("mode") == "open"
    assert forward["isolated"] is None
    assert forward["nat-on-one-nic"].get("dev") == "eth0"


def test_bridged_network_only_points_at_the_host_bridge():
    root = ET.fromstring(build_network_xml(NETWORK_CASES["bridged"]))
    assert root.find("bridge").attrib == {"name": "ovirtmgmt"}
    assert root.find("ip") is None


def test_schema_check_is_real_it_refuses_a_reserved_range_managerid(tmp_path):
    """Guards the guard: XML our validation would refuse is refused by libvirt's schema too."""
    from dataclasses import replace

    nic = NIC_CASES["direct-vepa-802.1Qbg"]
    bad = replace(nic, virtualport=replace(nic.virtualport, managerid=300))
    xml = build_domain_xml(VmSpec(name="vm1", memory_mib=64, vcpus=1, nics=(bad,)), "kvm")
    if VALIDATOR is None:
        pytest.skip("virt-xml-validate is not installed")
    path = tmp_path / "bad.xml"
    path.write_text(xml)
    assert subprocess.run([VALIDATOR, str(path), "domain"], capture_output=True).returncode != 0


# --- boot sources (issue 15) ----------------------------------------------------------------

def test_a_diskless_vm_has_no_os_devices_as_before():
    dom = ET.fromstring(build_domain_xml(vm_with(VNicSpec("nic1", NicKind.BRIDGE, "br0")), "kvm"))
    assert [el.tag for el in dom.find("os")] == ["type"]
    assert dom.find("devices/serial") is None and dom.find("devices/channel") is None
    assert dom.find("devices/disk") is None


def test_direct_kernel_boot_writes_kernel_initrd_cmdline_console_file_and_agent_channel(tmp_path):
    spec = vm_with(VNicSpec("nic1", NicKind.BRIDGE, "br0"),
                   boot=BootSource(kernel="/var/cache/g/vmlinuz", initrd="/var/cache/g/initrd.img",
                                   cmdline="console=ttyS0 quiet vf.ip=52:54:00:00:00:01=192.0.2.10/24"))
    spec = replace(spec, console_log="/var/lib/virtfleet-agent/console/vm1.log")
    xml = build_domain_xml(spec, "qemu")
    assert_schema_valid(tmp_path, xml, "domain")
    dom = ET.fromstring(xml)
    assert dom.get("type") == "qemu"
    assert [(el.tag, el.text) for el in dom.find("os")][1:] == [
        ("kernel", "/var/cache/g/vmlinuz"), ("initrd", "/var/cache/g/initrd.img"),
        ("cmdline", "console=ttyS0 quiet vf.ip=52:54:00:00:00:01=192.0.2.10/24")]
    serial = dom.find("devices/serial")
    assert serial.get("type") == "file"
    assert serial.find("source").attrib == {"path": "/var/lib/virtfleet-agent/console/vm1.log", "append": "on"}
    channel = dom.find("devices/channel")
    assert channel.get("type") == "unix"
    assert channel.find("target").attrib == {"type": "virtio", "name": "org.qemu.guest_agent.0"}


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_disk_boot_is_virtio_blk_with_the_probed_format(tmp_path, fmt):
    spec = replace(vm_with(boot=BootSource(disk="/var/lib/images/a.img")),
                   boot=BootSource(disk="/var/lib/images/a.img", disk_format=fmt), console_log="/tmp/c/vm1.log")
    xml = build_domain_xml(spec, "kvm")
    assert_schema_valid(tmp_path, xml, "domain")
    dom = ET.fromstring(xml)
    assert dom.find("os/boot").get("dev") == "hd" and dom.find("os/kernel") is None
    disk = dom.find("devices/disk")
    assert disk.find("driver").attrib == {"name": "qemu", "type": fmt}
    assert disk.find("source").get("file") == "/var/lib/images/a.img"
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert dom.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"


# --- vNIC profile settings (issue 15) ---------------------------------------------------------

PROFILED = NIC_CASES["bridge-with-every-profile-setting"]


def interface_of(nic: VNicSpec) -> ET.Element:
    return ET.fromstring(build_domain_xml(vm_with(nic), "kvm")).find("devices/interface")


def test_qos_is_written_per_direction_in_kbytes_per_second():
    bw = interface_of(PROFILED).find("bandwidth")
    assert [(el.tag, el.attrib) for el in bw] == [
        ("inbound", {"average": "1000", "peak": "2000", "burst": "512"}), ("outbound", {"average": "3000"})]


def test_a_direction_without_a_limit_is_left_out():
    bw = interface_of(VNicSpec("n", NicKind.BRIDGE, "br0", bandwidth=Bandwidth(outbound=BandwidthLimit(10)))
                      ).find("bandwidth")
    assert [el.tag for el in bw] == ["outbound"]


def test_filter_is_a_filterref_with_its_parameters_in_order():
    ref = interface_of(PROFILED).find("filterref")
    assert ref.get("filter") == "clean-traffic"
    assert [(p.get("name"), p.get("value")) for p in ref.findall("parameter")] == [
        ("IP", "192.0.2.10"), ("MAC", "52:54:00:aa:bb:cc")]


def test_isolation_mtu_and_link_down_are_libvirts_own_elements():
    iface = interface_of(PROFILED)
    assert iface.find("port").attrib == {"isolated": "yes"}
    assert iface.find("mtu").attrib == {"size": "9000"}
    assert iface.find("link").attrib == {"state": "down"}


def test_a_vnic_without_a_profile_gets_none_of_its_elements():
    iface = interface_of(VNicSpec("n", NicKind.BRIDGE, "br0"))
    assert [iface.find(tag) for tag in ("bandwidth", "filterref", "port", "mtu", "link")] == [None] * 5
    assert ET.fromstring(build_domain_xml(vm_with(VNicSpec("n", NicKind.BRIDGE, "br0")), "kvm")).find(
        "metadata") is None


def test_port_mirroring_is_kept_in_the_domains_metadata_not_in_libvirts_interface():
    other = VNicSpec("plain", NicKind.BRIDGE, "br0")
    xml = build_domain_xml(vm_with(PROFILED, other), "kvm")
    assert mirrored_nics(xml) == {"nic1"}


def test_hot_plugged_interface_carries_the_profile_too():
    iface = ET.fromstring(build_interface_xml(complete_vm(vm_with(PROFILED)).nics[0]))
    assert {el.tag for el in iface} >= {"bandwidth", "filterref", "port", "mtu", "link"}
