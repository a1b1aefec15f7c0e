"""Issue 6 on real libvirt + QEMU in a lab host, through the agent's VmAgentService as the manager calls it.

The test reads the host itself (`ip -n NS -d -j link`, `virsh dumpxml` on the host's
own libvirtd) and compares with what the agent reported.
"""
from __future__ import annotations

import grpc
import pytest

from virtfleet.v1 import vm_pb2

from .conftest import KVM_WORKS, sh

BRIDGES = ("br-a", "br-b")
# (vNIC, macvtap mode, host NIC): one lab NIC per mode, so each macvtap's parent proves which vNIC it is.
DIRECT = (("nic3", vm_pb2.DIRECT_MODE_VEPA, "eth1", "vepa"), ("nic4", vm_pb2.DIRECT_MODE_BRIDGE, "eth2", "bridge"),
          ("nic5", vm_pb2.DIRECT_MODE_PRIVATE, "eth3", "private"),
          ("nic6", vm_pb2.DIRECT_MODE_PASSTHROUGH, "eth4", "passthru"))


def mac(vm_no: int, nic_no: int) -> str:
    return f"52:54:00:b2:{vm_no:02x}:{nic_no:02x}"


def bridge_nic(name: str, bridge: str, mac_address: str) -> vm_pb2.VNic:
    return vm_pb2.VNic(name=name, kind=vm_pb2.VNIC_KIND_BRIDGE, source=bridge, mac=mac_address)


def direct_nic(name: str, mode: int, dev: str, mac_address: str) -> vm_pb2.VNic:
    return vm_pb2.VNic(name=name, kind=vm_pb2.VNIC_KIND_DIRECT, source=dev, mode=mode, mac=mac_address)


def pci_text(pci: vm_pb2.PciAddress) -> str:
    return f"{pci.domain:04x}:{pci.bus:02x}:{pci.slot:02x}.{pci.function:x}"


def live_pci(lab, vm: str) -> dict[str, str]:
    """vNIC name → PCI address, from the live domain XML (alias ua-NAME)."""
    found = {}
    for iface in lab.live_interfaces(vm):
        addr = iface.find("address[@type='pci']")
        alias = iface.find("alias").get("name")
        found[alias.removeprefix("ua-")] = "{:04x}:{:02x}:{:02x}.{:x}".format(
            *(int(addr.get(k), 16) for k in ("domain", "bus", "slot", "function")))
    return found


def links(lab) -> dict[str, dict]:
    return {l["ifname"]: l for l in lab.ip_json("-d", "link")}


def taps_on(lab, bridge: str) -> set[str]:
    return {name for name, l in links(lab).items() if l.get("master") == bridge and name.startswith("vnet")}


def macvtaps(lab) -> dict[str, dict]:
    """macvtap device → its parent NIC, mode and MAC, as the kernel has them."""
    return {name: {"parent": l.get("link"), "mode": l["linkinfo"]["info_data"]["mode"], "mac": l["address"]}
            for name, l in links(lab).items() if l.get("linkinfo", {}).get("info_kind") == "macvtap"}


def vm_devices(lab) -> set[str]:
    return {name for name in links(lab) if name.startswith(("vnet", "macvtap"))}


@pytest.fixture(scope="module")
def host(vm_lab, vm_agent):
    for br in BRIDGES:
        sh("ip", "-n", vm_lab.netns, "link", "add", br, "type", "bridge")
        sh("ip", "-n", vm_lab.netns, "link", "set", br, "up")
    yield vm_lab
    for vm in vm_agent.ListVms(vm_pb2.ListVmsRequest()).vms:
        if vm.state != vm_pb2.VM_STATE_SHUTOFF:
            vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name))
        vm_agent.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name))
    for br in BRIDGES:
        sh("ip", "-n", vm_lab.netns, "link", "del", br)


@pytest.fixture(scope="module")
def rt1(host, vm_agent) -> vm_pb2.VmStatus:
    nics = [bridge_nic("nic1", "br-a", mac(1, 1)), bridge_nic("nic2", "br-b", mac(1, 2))]
    nics += [direct_nic(name, mode, dev, mac(1, i)) for i, (name, mode, dev, _) in enumerate(DIRECT, start=3)]
    vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(name="rt1", memory_mib=64, vcpus=1, nics=nics)))
    return vm_agent.StartVm(vm_pb2.StartVmRequest(name="rt1"))


def by_name(status: vm_pb2.VmStatus) -> dict[str, vm_pb2.VNicRuntime]:
    return {n.name: n for n in status.nics}


def test_vm_runs_under_kvm_when_dev_kvm_works_else_tcg(rt1, host):
    assert rt1.state == vm_pb2.VM_STATE_RUNNING
    assert rt1.domain_type == ("kvm" if KVM_WORKS else "qemu")
    assert "<domain type='%s'" % rt1.domain_type in host.virsh("dumpxml", "rt1")


def test_bridge_vnics_are_vnet_taps_enslaved_to_their_bridges(rt1, host):
    nics = by_name(rt1)
    for name, bridge in (("nic1", "br-a"), ("nic2", "br-b")):
        tap = nics[name].host_device
        assert tap.startswith("vnet")
        assert taps_on(host, bridge) == {tap}
        # libvirt gives the tap the guest's MAC with the first byte 0xfe, so the bridge never learns it as its own
        assert links(host)[tap]["address"] == "fe" + nics[name].mac[2:]


def test_direct_vnics_are_macvtaps_with_the_requested_mode_on_the_requested_nic(rt1, host):
    nics = by_name(rt1)
    kernel = macvtaps(host)
    assert len(kernel) == len(DIRECT)
    for name, _, dev, kernel_mode in DIRECT:
        device = nics[name].host_device
        assert device.startswith("macvtap"), name
        assert kernel[device] == {"parent": dev, "mode": kernel_mode, "mac": nics[name].mac}, name


def test_reported_pci_addresses_equal_the_live_domain_xml(rt1, host):
    reported = {n.name: pci_text(n.pci) for n in rt1.nics}
    assert reported == live_pci(host, "rt1")
    assert len(set(reported.values())) == 6
    assert [n.mac for n in rt1.nics] == [mac(1, i) for i in range(1, 7)]


def test_hot_plug_adds_a_tap_and_reports_a_new_pci_address(rt1, host, vm_agent):
    before = {n.name: pci_text(n.pci) for n in rt1.nics}
    after = vm_agent.AttachNic(vm_pb2.AttachNicRequest(vm="rt1", nic=bridge_nic("nic7", "br-a", mac(1, 7))))
    nic7 = by_name(after)["nic7"]
    assert nic7.host_device.startswith("vnet") and nic7.mac == mac(1, 7)
    assert pci_text(nic7.pci) not in before.values()
    assert taps_on(host, "br-a") == {by_name(rt1)["nic1"].host_device, nic7.host_device}
    assert live_pci(host, "rt1") == {**before, "nic7": pci_text(nic7.pci)}
    assert {n.name: pci_text(n.pci) for n in after.nics if n.name != "nic7"} == before


def test_a_second_guest_cannot_take_the_passed_through_nic(rt1, vm_agent):
    spec = vm_pb2.VmSpec(name="rt-thief", memory_mib=64, vcpus=1,
                         nics=[direct_nic("nic1", vm_pb2.DIRECT_MODE_PASSTHROUGH, "eth4", mac(9, 1))])
    with pytest.raises(grpc.RpcError) as err:
        vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "rt1" in err.value.details()


def test_stop_and_destroy_remove_the_vms_devices(host, vm_agent):
    nics = [bridge_nic("nic1", "br-b", mac(2, 1)), direct_nic("nic2", vm_pb2.DIRECT_MODE_BRIDGE, "eth5", mac(2, 2))]
    vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(name="rt2", memory_mib=64, vcpus=1, nics=nics)))
    baseline = vm_devices(host)

    started = vm_agent.StartVm(vm_pb2.StartVmRequest(name="rt2"))
    mine = {n.host_device for n in started.nics}
    assert vm_devices(host) == baseline | mine and len(mine) == 2
    # No guest OS answers the ACPI power button: a graceful stop ends in destroy after the timeout.
    stopped = vm_agent.StopVm(vm_pb2.StopVmRequest(name="rt2", timeout_s=1))
    assert stopped.vm.state == vm_pb2.VM_STATE_SHUTOFF and stopped.destroyed
    assert vm_devices(host) == baseline

    again = vm_agent.StartVm(vm_pb2.StartVmRequest(name="rt2", paused=True))
    assert again.state == vm_pb2.VM_STATE_PAUSED
    assert vm_devices(host) == baseline | {n.host_device for n in again.nics}
    assert vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name="rt2")).state == vm_pb2.VM_STATE_SHUTOFF
    assert vm_devices(host) == baseline
