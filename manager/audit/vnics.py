"""Running VMs' vNICs against their devices on the host (vnetN taps, macvtap)."""
from __future__ import annotations

from virtfleet.macaddr import canonical
from virtfleet.v1 import netstate_pb2

from ..domain.vnic import VnicKind
from .findings import VNIC, Finding, Severity
from .inputs import VnicInput
from .macs import VM_FACING_KINDS, device_mac, guest_key

# The kernel and libvirt spell one macvtap mode two ways.
_MODES = {"passthru": "passthrough"}


def normal_mode(mode: str | None) -> str:
    text = (mode or "vepa").strip().lower()
    return _MODES.get(text, text)


class DeviceIndex:
    """One host's links by name, by (kind, MAC), and its VM-facing devices.

    Built once per reported state, not once per vNIC or per audit: the caller
    may keep it while the host's state object stays the same (the monitor
    replaces the object on every change).
    """

    def __init__(self, state: netstate_pb2.NetworkState) -> None:
        self.state = state
        links = list(state.links)
        self.by_name = {link.name: link for link in links}
        facing = [(link, _mac(link)) for link in links if link.kind in VM_FACING_KINDS]
        self.by_mac = {(link.kind, mac): link for link, mac in facing}
        # (guest key, device name, MAC) of every VM-facing device, for the datacenter-wide MAC checks
        self.vm_facing = [(guest_key(mac, link.kind), link.name, mac) for link, mac in facing if mac]
        # host-level findings of this state, per desired configuration (the audit's memo)
        self.memo: dict[tuple, list] = {}


def vnic_findings(vnic: VnicInput, index: DeviceIndex) -> list[Finding]:
    kind = "macvtap" if vnic.kind is VnicKind.DIRECT else "tun"
    want_mac = device_mac(vnic.mac, kind)
    obj = f"vm {vnic.vm} vNIC {vnic.name}"
    device = index.by_name.get(vnic.host_device) if vnic.host_device else None
    if device is None:
        device = index.by_mac.get((kind, want_mac))
    if device is None:
        where = vnic.host_device or f"a {kind} device with MAC {want_mac}"
        return [Finding(VNIC, Severity.ERROR, vnic.host or "", f"{obj}: device", where, "missing",
                        f"restart the VM's vNIC (unplug and plug {vnic.name}) or the VM")]
    findings = []
    if _mac(device) != want_mac:
        findings.append(Finding(VNIC, Severity.ERROR, vnic.host or "", f"{obj}: MAC of {device.name}",
                                want_mac, _mac(device) or "none",
                                "the guest uses another MAC than the manager recorded; re-plug the vNIC"))
    if vnic.kind is VnicKind.BRIDGE and vnic.network and device.master != vnic.network:
        findings.append(Finding(VNIC, Severity.ERROR, vnic.host or "", f"{obj}: bridge of {device.name}",
                                vnic.network, device.master or "none",
                                f"ip link set {device.name} master {vnic.network}"))
    if vnic.kind is VnicKind.DIRECT:
        if normal_mode(device.macvtap_mode) != normal_mode(vnic.direct_mode):
            findings.append(Finding(VNIC, Severity.WARNING, vnic.host or "", f"{obj}: macvtap mode of {device.name}",
                                    normal_mode(vnic.direct_mode), normal_mode(device.macvtap_mode),
                                    "re-plug the vNIC so libvirt makes the device in the recorded mode"))
        if vnic.direct_nic and device.parent and device.parent != vnic.direct_nic:
            findings.append(Finding(VNIC, Severity.ERROR, vnic.host or "", f"{obj}: NIC of {device.name}",
                                    vnic.direct_nic, device.parent, "re-plug the vNIC on the recorded NIC"))
    findings += link_findings(vnic, device, obj)
    return findings


def link_findings(vnic: VnicInput, device: netstate_pb2.Link, obj: str) -> list[Finding]:
    """The recorded link state against the host's side of the cable: the agent keeps the device down while the
    link is (taplink.py), so a device up with the cable out (or down with it in) was changed behind its back."""
    up = "UP" in device.flags
    if up != vnic.link_down:
        return []
    want, found = ("down", "up") if vnic.link_down else ("up", "down")
    return [Finding(VNIC, Severity.WARNING, vnic.host or "", f"{obj}: link of {device.name}", want, found,
                    f"virtfleet vm nic set {vnic.vm} {vnic.name} --link {want} (re-applies the recorded link state)")]


def _mac(link: netstate_pb2.Link) -> str:
    try:
        return canonical(link.mac)
    except ValueError:
        return ""
