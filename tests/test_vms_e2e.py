"""End to end on real libvirt + QEMU in the lab: seed 004's NIC order, as a guest would see it.

VM1 with 3 vNICs boots → the PCI addresses libvirt gave are stored → template from VM1 → VM2 from the
template boots → VM2's live domain XML has the same PCI address per vNIC position and its MACs ascend
in PCI order. A template without PCI addresses puts the vNICs in the domain XML in natural name order;
a VM from a snapshot without PCI addresses gets new MACs. Driven with the `virtfleet` command; the live
XML is read with `virsh` from the host's own libvirtd.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from manager.lab import libvirtd
from tests.fixtures.lab import running_lab, vf, vfj

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces"),
    pytest.mark.skipif(not libvirtd.available() or not shutil.which("virsh"),
                       reason="libvirtd, QEMU or virsh is not installed"),
]






def libvirt_socket(lab, host: str) -> Path:
    """The host's libvirtd socket, as `lab status` reports it or found under the lab directory."""
    for h in lab["status"]["hosts"]:
        if h["name"] == host:
            for key in ("libvirt_socket", "libvirtd_socket"):
                if h.get(key):
                    return Path(h[key])
            uri = h.get("libvirt_uri", "")
            if "socket=" in uri:
                return Path(uri.split("socket=", 1)[1].split("&")[0])
    found = [p for p in lab["dir"].rglob("libvirt-sock") if host in str(p)]
    assert found, f"no libvirtd socket for {host} under {lab['dir']}"
    return found[0]


def live_interfaces(lab, host: str, vm: str) -> list[tuple[str, str, str]]:
    """(alias, MAC, PCI address) of each <interface>, in the live domain XML's order."""
    uri = f"qemu+unix:///system?socket={libvirt_socket(lab, host)}"
    xml = subprocess.run(["virsh", "-c", uri, "dumpxml", vm], check=True, capture_output=True, text=True).stdout
    found = []
    for iface in ET.fromstring(xml).iter("interface"):
        addr = iface.find("address[@type='pci']")
        pci = "" if addr is None else "{:04x}:{:02x}:{:02x}.{:x}".format(
            *(int(addr.get(k), 16) for k in ("domain", "bus", "slot", "function")))
        alias = iface.find("alias")
        found.append((alias.get("name") if alias is not None else "", iface.find("mac").get("address"), pci))
    return found


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def stop_running_vms(lab) -> None:
    """`lab down` destroys guests too; stopping them first goes through the manager as an admin would."""
    for vm in json.loads(vf(lab, "vm", "list", "-o", "json", check=False).stdout or "[]"):
        if vm.get("state") == "up":
            vf(lab, "vm", "stop", vm["name"], "--force", check=False)


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--libvirt", tag="vfv") as lab:
        try:
            lab["status"] = vfj(lab, "lab", "status")
            vf(lab, "host", "setup-management", "host1", "--nic", "eth0")
            yield lab
        finally:
            stop_running_vms(lab)

def test_template_from_a_booted_vm_keeps_pci_per_position_and_macs_ascend(lab):
    vf(lab, "vm", "create", "vm1", "--nic", "nic1=ovirtmgmt", "--nic", "nic2=ovirtmgmt", "--nic", "nic3=ovirtmgmt")
    vm1 = vfj(lab, "vm", "start", "vm1")
    assert vm1["state"] == "up" and vm1["host"] == "host1"
    stored = [(n["name"], n["mac"], n["pci_address"]) for n in vm1["nics"]]
    assert all(pci for _, _, pci in stored), "first boot stored every vNIC's PCI address"
    live1 = sorted(live_interfaces(lab, "host1", "vm1"), key=lambda i: i[2])
    assert [(a.removeprefix("ua-"), m, p) for a, m, p in live1] == stored
    bridged = {l["ifname"] for l in json.loads(subprocess.run(
        ["ip", "-n", lab["prefix"] + "host1", "-j", "link", "show", "master", "ovirtmgmt"],
        check=True, capture_output=True, text=True).stdout)}
    assert {n["host_device"] for n in vm1["nics"]} <= bridged

    tpl = vfj(lab, "template", "create", "t1", "--from-vm", "vm1")
    assert [n["pci_address"] for n in tpl["nics"]] == [p for _, _, p in stored]
    vf(lab, "vm", "create", "vm2", "--template", "t1")
    vf(lab, "vm", "start", "vm2")
    live2 = sorted(live_interfaces(lab, "host1", "vm2"), key=lambda i: i[2])
    assert [p for _, _, p in live2] == [p for _, _, p in live1]
    assert [a for a, _, _ in live2] == [a for a, _, _ in live1]
    macs = [mac_int(m) for _, m, _ in live2]
    assert macs == sorted(macs) and len(set(macs)) == 3
    assert vf(lab, "vm", "check-order", "vm2").returncode == 0


def test_template_without_pci_lists_vnics_in_natural_name_order(lab):
    vf(lab, "template", "create", "t2", "--nic", "nic10=ovirtmgmt", "--nic", "nic2=ovirtmgmt",
       "--nic", "nic1=ovirtmgmt")
    vf(lab, "vm", "create", "vm3", "--template", "t2")
    vm3 = vfj(lab, "vm", "start", "vm3")
    live = live_interfaces(lab, "host1", "vm3")
    assert [a for a, _, _ in live] == ["ua-nic1", "ua-nic2", "ua-nic10"]
    macs = [mac_int(m) for _, m, _ in live]
    assert macs == sorted(macs)
    assert [n["name"] for n in vm3["nics"]] == ["nic1", "nic2", "nic10"]
    assert all(n["pci_address"] for n in vm3["nics"])
    assert vf(lab, "vm", "check-order", "vm3").returncode == 0


def test_vm_from_a_snapshot_without_pci_gets_new_macs(lab):
    vm4 = vfj(lab, "vm", "create", "vm4", "--nic", "nic1=ovirtmgmt", "--nic", "nic2=ovirtmgmt")
    snap = vfj(lab, "snapshot", "create", "vm4", "s4")
    assert not any(n["pci_address"] for n in snap["nics"])
    vm5 = vfj(lab, "vm", "create", "vm5", "--snapshot", "s4")
    assert not {n["mac"] for n in vm5["nics"]} & {n["mac"] for n in vm4["nics"]}
    vf(lab, "vm", "start", "vm5")
    assert sorted(m for _, m, _ in live_interfaces(lab, "host1", "vm5")) == sorted(n["mac"] for n in vm5["nics"])


def test_hot_plugged_vnic_gets_its_pci_address_stored_and_stop_clears_devices(lab):
    vf(lab, "vm", "create", "vm6", "--nic", "nic1=ovirtmgmt")
    vf(lab, "vm", "start", "vm6")
    vm6 = vfj(lab, "vm", "nic", "add", "vm6", "nic2=ovirtmgmt")
    added = next(n for n in vm6["nics"] if n["name"] == "nic2")
    assert added["pci_address"] and added["host_device"]
    assert ("ua-nic2", added["mac"], added["pci_address"]) in live_interfaces(lab, "host1", "vm6")
    down = vfj(lab, "vm", "stop", "vm6", "--force")
    assert down["state"] == "down" and not any(n["host_device"] for n in down["nics"])
    assert all(n["pci_address"] for n in down["nics"])
    vf(lab, "vm", "delete", "vm6")


def test_a_vnic_the_guest_does_not_release_stays_unplugging_with_its_mac(lab):
    """The diskless guest runs no OS, so it never completes a hot-unplug: exactly the guest that does not let go."""
    vf(lab, "vm", "create", "vm7", "--nic", "nic1=ovirtmgmt", "--nic", "nic2=ovirtmgmt")
    vf(lab, "vm", "start", "vm7")
    mac = next(n["mac"] for n in vfj(lab, "vm", "show", "vm7")["nics"] if n["name"] == "nic2")
    said = vf(lab, "vm", "nic", "remove", "vm7", "nic2").stdout
    assert "has not released" in said and "unplugging" in said and mac in said
    assert any(alias == "ua-nic2" for alias, _, _ in live_interfaces(lab, "host1", "vm7"))
    shown = {n["name"]: n for n in vfj(lab, "vm", "show", "vm7")["nics"]}
    assert shown["nic2"]["unplugging"] and shown["nic2"]["mac"] == mac and not shown["nic1"].get("unplugging")
    # Nobody gets its MAC, and its name is not free again while the guest holds the device.
    taken = vf(lab, "vm", "create", "vm8", "--nic", f"nic1=ovirtmgmt,mac={mac}", check=False)
    assert taken.returncode != 0 and "ALREADY_EXISTS" in taken.stderr
    readd = vf(lab, "vm", "nic", "add", "vm7", "nic2=ovirtmgmt", check=False)
    assert readd.returncode != 0 and "still being unplugged" in readd.stderr
    # Asked again, the guest still holds it: still unplugging.
    assert "has not released" in vf(lab, "vm", "nic", "remove", "vm7", "nic2").stdout
    # Stopped, the guest holds nothing: the removal completes and the MAC is free.
    down = vfj(lab, "vm", "stop", "vm7", "--force")
    assert [n["name"] for n in down["nics"]] == ["nic1"]
    vm8 = vfj(lab, "vm", "create", "vm8", "--nic", f"nic1=ovirtmgmt,mac={mac}")
    assert vm8["nics"][0]["mac"] == mac
    vf(lab, "vm", "delete", "vm8")
    vf(lab, "vm", "delete", "vm7")
