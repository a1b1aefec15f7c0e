"""Domain XML from a typed VM spec: a pure function, so every kind and mode is testable offline.

Choices that matter:
- no <target dev>: libvirt names taps vnetN and macvtaps macvtapN itself;
- each vNIC carries the user alias ua-NAME, so the live XML maps back to our vNIC names
  even after hot-plug changes the order;
- <rom enabled='no'/> unless asked: a diskless guest otherwise runs into iPXE, which
  pauses with an emulation failure under nested KVM;
- no <cpu mode>: host-passthrough / host-model fail under this nested KVM;
- ACPI on: without it QEMU refuses hot-plug on bus pci.0 and the guest never sees a shutdown request.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .spec import DirectMode, NicKind, PciAddress, Qbg, Qbh, VmSpec, VNicSpec

ALIAS_PREFIX = "ua-"  # libvirt's prefix for user-chosen device aliases


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
    features = ET.SubElement(dom, "features")  # ACPI: PCI hot-plug on pc's bus 0 and the graceful shutdown
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    for nic in spec.nics:
        devices.append(interface_element(nic, boot_rom=spec.nic_boot_rom))
    return _to_text(dom)


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
    return iface


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
