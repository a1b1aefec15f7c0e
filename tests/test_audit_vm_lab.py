"""vNIC audit against a real VM on a lab host's own libvirtd and QEMU.

A running VM's taps are what libvirt made (vnetN, MAC with first byte fe); the
audit must find them in order as recorded, and notice when one is moved to
another bridge behind the manager's back.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from manager.lab import libvirtd
from tests.fixtures.lab import eventually, running_lab, vf, vfj
from tests.test_vms_e2e import stop_running_vms

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces"),
    pytest.mark.skipif(not libvirtd.available() or not shutil.which("virsh"),
                       reason="libvirtd, QEMU or virsh is not installed"),
]


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--libvirt", tag="vfa") as lab:
        try:
            lab["ns"] = lab["prefix"] + "host1"
            vf(lab, "host", "setup-management", "host1", "--nic", "eth0")
            yield lab
        finally:
            stop_running_vms(lab)



def findings(lab, category: str) -> list[dict]:
    return vfj(lab, "audit", "--category", category).get("findings", [])


def ip(lab, *args: str) -> None:
    subprocess.run(["ip", "-n", lab["ns"], *args], check=True, capture_output=True)


def test_a_running_vms_vnics_are_in_sync_and_a_moved_tap_is_found(lab):
    vf(lab, "vm", "create", "web1", "--nic", "nic1=ovirtmgmt", "--nic", "nic2=ovirtmgmt")
    vm = vfj(lab, "vm", "start", "web1")
    devices = {n["name"]: n["host_device"] for n in vm["nics"]}
    assert all(devices.values())
    # libvirt's taps, with their derived MACs, match the manager's records and the pool's allocations
    assert eventually(lambda: not findings(lab, "vnic") and not findings(lab, "mac-foreign")), \
        findings(lab, "vnic") + findings(lab, "mac-foreign")

    tap = devices["nic2"]
    ip(lab, "link", "add", "br-elsewhere", "type", "bridge")
    ip(lab, "link", "set", tap, "nomaster")
    ip(lab, "link", "set", tap, "master", "br-elsewhere")
    try:
        obj = f"vm web1 vNIC nic2: bridge of {tap}"
        found = eventually(lambda: next((f for f in findings(lab, "vnic") if f["object"] == obj), None))
        assert found and (found["expected"], found["found"], found["severity"]) == ("ovirtmgmt", "br-elsewhere", "error")
        assert [f["object"] for f in findings(lab, "vnic")] == [obj]
    finally:
        ip(lab, "link", "set", tap, "nomaster")
        ip(lab, "link", "set", tap, "master", "ovirtmgmt")
        ip(lab, "link", "del", "br-elsewhere")
    assert eventually(lambda: not findings(lab, "vnic"))
