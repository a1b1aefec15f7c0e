"""Domain XML from a typed VM spec: a pure function, so every kind and mode is testable offline.

Choices that matter:
- no <target dev>: libvirt names taps vnetN and macvtaps macvtapN itself;
- each vNIC carries the user alias ua-NAME, so the live XML maps back to our vNIC names
  even after hot-plug changes the order;
- <rom enabled='no'/> unless asked: a diskless guest otherwise runs into iPXE, which
  pauses with an emulation failure under nested KVM;
- no <cpu mode>: host-passthrough / host-model fail under this nested KVM;
- ACPI on: without it QEMU refuses hot-plug on bus pci.0 and the guest never sees a shutdown request;
  with it (on libvirt's default `pc` machine) a guest kernel releases a hot-unplugged NIC in ~0.3 s;
- a VM with an OS (a boot source) gets a serial console written to a file with append='on' (a
  migration's destination QEMU would truncate it otherwise), and the qemu-guest-agent channel, whose
  socket libvirt places itself; a diskless VM gets neither, so its XML is what it always was;
- a disk is virtio-blk with the format the agent read from the file's header (boot.disk_format):
  QEMU refuses to guess a raw image's format, and trusting a name would let a raw image be read as qcow2.

A vNIC's profile settings (issue 15), each in libvirt's own element:
- QoS as <bandwidth><inbound/><outbound/></bandwidth> in kbytes/s (burst in kbytes), the unit
  libvirt and oVirt use, so a profile's numbers reach tc unconverted; inbound is to the guest;
- anti-spoofing as <filterref filter=…> with its <parameter>s: libvirt's nwfilter instantiates
  the rules per tap in the host's own ebtables/nft, and removes them with the tap;
- isolation as <port isolated='yes'/>: the kernel bridge's port isolation (isolated ports reach
  only non-isolated ones), which libvirt sets on the tap when it joins the bridge;
- <mtu size=…/>: the tap's MTU, also told to a virtio guest (host_mtu), so it needs a restart;
- <link state='down'/> only when down: "up" is libvirt's default, and leaving it out keeps a
  vNIC without a profile byte-for-byte what it was;
- port mirroring is not libvirt's: the agent puts tc mirred rules on the bridge (mirroring.py),
  and the wish is kept in the domain's <metadata> so a start or an agent restart knows it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .spec import (Bandwidth, BandwidthLimit, BootKind, BootSource, DirectMode, FilterRef, NicKind, PciAddress, Qbg,
                   Qbh, VmSpec, VNicSpec)

ALIAS_PREFIX = "ua-"  # libvirt's prefix for user-chosen device aliases
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
METADATA_NS = "https://virtfleet.example/xmlns/vnics/1"  # our <metadata> element's namespace
METADATA_KEY = "virtfleet"                                # and the prefix libvirt writes it with


def nic_alias(name: str) -> str:
    return ALIAS_PREFIX + name


def build_domain_xml(spec: VmSpec, domain_type: str) -> str:
    """The spec must already be validated (validation.validate_vm) and completed (complete_vm)."""
    dom = ET.Element("domain", type=spec.domain_type or domain_type)
    ET.SubElement(dom, "name").text = spec.name
    if spec.uuid:
        ET.SubElement(dom, "uuid").text = spec.uuid
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    _boot_elements(os_el, spec.boot)
    features = ET.SubElement(dom, "features")  # ACPI: PCI hot-plug on pc's bus 0 and the graceful shutdown
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    for nic in spec.nics:
        devices.append(interface_element(nic, boot_rom=spec.nic_boot_rom))
    _os_devices(devices, spec)
    if any(n.port_mirroring for n in spec.nics):
        ET.SubElement(dom, "metadata").append(ET.fromstring(mirroring_metadata(n.name for n in spec.nics
                                                                               if n.port_mirroring)))
    return _to_text(dom)


def _boot_elements(os_el: ET.Element, boot: BootSource) -> None:
    """Direct kernel boot (<kernel>/<initrd>/<cmdline>) or the disk; test_guest is resolved before (boot.py)."""
    if boot.kind == BootKind.KERNEL:
        ET.SubElement(os_el, "kernel").text = boot.kernel
        if boot.initrd:
            ET.SubElement(os_el, "initrd").text = boot.initrd
        if boot.cmdline:
            ET.SubElement(os_el, "cmdline").text = boot.cmdline
    elif boot.kind == BootKind.DISK:
        ET.SubElement(os_el, "boot", dev="hd")


def _os_devices(devices: ET.Element, spec: VmSpec) -> None:
    """The disk, the serial console to its file, and the guest agent's channel (VMs with an OS only)."""
    if spec.boot.kind == BootKind.DISK:
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=spec.boot.disk_format or "raw")
        ET.SubElement(disk, "source", file=spec.boot.disk)
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
    if not spec.boot.has_os:
        return
    if spec.console_log:
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=spec.console_log, append="on")
        ET.SubElement(serial, "target", port="0")
    channel = ET.SubElement(devices, "channel", type="unix")
    ET.SubElement(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)


def build_interface_xml(nic: VNicSpec, boot_rom: bool = False) -> str:
    """One <interface>, for hot-plug and unplug."""
    return _to_text(interface_element(nic, boot_rom))


def interface_element(nic: VNicSpec, boot_rom: bool = False) -> ET.Element:
    iface = ET.Element("interface", type=nic.kind.interface_type if nic.kind else "")
    if nic.mac:
        ET.SubElement(iface, "mac", address=nic.mac)
    if nic.kind == NicKind.BRIDGE:
        ET.SubElement(iface, "source", bridge=nic.source)
    elif nic.kind == NicKind.DIRECT:
        ET.SubElement(iface, "source", dev=nic.source, mode=(nic.mode or DirectMode.VEPA).value)
    else:
        ET.SubElement(iface, "source", network=nic.source)
    if nic.virtualport is not None:
        iface.append(_virtualport_element(nic.virtualport))
    ET.SubElement(iface, "model", type=nic.model)
    if not boot_rom:
        ET.SubElement(iface, "rom", enabled="no")
    ET.SubElement(iface, "alias", name=nic_alias(nic.name))
    if nic.pci is not None:
        iface.append(pci_element(nic.pci))
    for el in profile_elements(nic):
        iface.append(el)
    return iface


def profile_elements(nic: VNicSpec) -> list[ET.Element]:
    """The <interface> children a vNIC's profile gives it (none for a vNIC without one)."""
    found = []
    if nic.bandwidth is not None:
        found.append(bandwidth_element(nic.bandwidth))
    if nic.filter is not None:
        found.append(filterref_element(nic.filter))
    if nic.isolated:
        found.append(ET.Element("port", isolated="yes"))
    if nic.mtu:
        found.append(ET.Element("mtu", size=str(nic.mtu)))
    if nic.link_down:
        found.append(ET.Element("link", state="down"))
    return found


PROFILE_TAGS = ("bandwidth", "filterref", "port", "mtu", "link")  # the children profile_elements writes


def bandwidth_element(bw: Bandwidth) -> ET.Element:
    el = ET.Element("bandwidth")
    for direction, limit in (("inbound", bw.inbound), ("outbound", bw.outbound)):
        if limit is not None:
            el.append(_limit_element(direction, limit))
    return el


def _limit_element(direction: str, limit: BandwidthLimit) -> ET.Element:
    attrs = {"average": str(limit.average)}
    if limit.peak:
        attrs["peak"] = str(limit.peak)
    if limit.burst:
        attrs["burst"] = str(limit.burst)
    return ET.Element(direction, attrs)


def filterref_element(ref: FilterRef) -> ET.Element:
    el = ET.Element("filterref", filter=ref.name)
    for name, value in ref.parameters:
        ET.SubElement(el, "parameter", name=name, value=value)
    return el


def mirroring_metadata(nic_names, namespaced: bool = True) -> str:
    """Our <metadata> child: which vNICs want the bridge's traffic mirrored to them.

    In a whole domain XML it carries our namespace; `virDomainSetMetadata` wants it bare
    (namespaced=False) and adds the namespace itself, refusing one already declared."""
    ns = f"{{{METADATA_NS}}}" if namespaced else ""
    root = ET.Element(f"{ns}vnics")
    for name in sorted(nic_names):
        ET.SubElement(root, f"{ns}nic", name=name, port_mirroring="yes")
    ET.register_namespace(METADATA_KEY, METADATA_NS)
    return ET.tostring(root, encoding="unicode")


def _virtualport_element(port: Qbg | Qbh) -> ET.Element:
    if isinstance(port, Qbg):
        vp = ET.Element("virtualport", type="802.1Qbg")
        attrs = {"managerid": str(port.managerid), "typeid": str(port.typeid),
                 "typeidversion": str(port.typeidversion)}
        if port.instanceid:
            attrs["instanceid"] = port.instanceid
        ET.SubElement(vp, "parameters", attrs)
        return vp
    vp = ET.Element("virtualport", type="802.1Qbh")
    ET.SubElement(vp, "parameters", profileid=port.profileid)
    return vp


def pci_element(pci: PciAddress) -> ET.Element:
    return ET.Element("address", type="pci", domain=f"0x{pci.domain:04x}", bus=f"0x{pci.bus:02x}",
                      slot=f"0x{pci.slot:02x}", function=f"0x{pci.function:x}")


def _to_text(el: ET.Element) -> str:
    ET.indent(el)
    return ET.tostring(el, encoding="unicode") + "\n"
