"""Seed 004 asked from inside real guests, and hot-unplug completed by one (issue 15), on a lab with a manager.

The source VM boots the test guest with three vNICs; its guest agent says what the guest calls
each (vm show's guest_name), and the template and snapshot made from it keep those names. VMs
made from the template (with PCI addresses), from a template without PCI addresses, and from the
snapshot then boot their own guests, which are asked the same question:

- from the template and from the snapshot, each vNIC has the name the source's guest gave it,
  and `check-order --guest` says so; from the template without PCI addresses, the guest names
  follow the vNIC names (the rule's promise: the source's guest keeps no names to compare with);
- RemoveNic on a running guest: the guest releases the device, and only then are the vNIC and
  its MAC gone (another vNIC can take the MAC);
- an unplug and re-plug that changes which name the guest gives a vNIC is caught by
  `vm check-order --guest` and by the audit's guest-nic category.

Everything goes through the manager's API (and the `virtfleet` command for what admins read);
the guests run under TCG as `auto` picks here, in their lab host's own libvirtd.
"""
from __future__ import annotations

import os
import shutil

import grpc
import pytest

from manager.lab import libvirtd
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from tests.fixtures.guest_lab import GuestLab, until
from tests.fixtures.lab import running_lab, vf, vfj
from virtfleet.v1 import vm_pb2, vms_pb2

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces"),
    pytest.mark.skipif(not libvirtd.available() or not shutil.which("virsh"),
                       reason="libvirtd, QEMU or virsh is not installed"),
]

NETWORK = "vmnet"
SOURCE = "src"
FROM_TEMPLATE, FROM_NAME_TEMPLATE, FROM_SNAPSHOT = "vm-tpl", "vm-names", "vm-snap"


def nics(*names: str) -> list[vms_pb2.Nic]:
    return [vms_pb2.Nic(name=n, network=NETWORK) for n in names]


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--nics", "2", "--libvirt", tag="vfo") as lab:
        vf(lab, "network", "create", NETWORK)
        vf(lab, "host", "setup-networks", "host1", "--attach", f"{NETWORK}=eth1")
        yield lab


@dataclass(frozen=True)
class Source:
    """What the source VM's guest called each vNIC, and the template and snapshot made from the VM."""

    names: dict[str, str]
    template: vms_pb2.Template
    snapshot: vms_pb2.Snapshot


@pytest.fixture(scope="module")
def guests(lab):
    g = GuestLab(lab)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture(scope="module")
def source(guests) -> Source:
    """The source booted and asked; its template and snapshot made; then the three VMs made from them booted
    (the source stopped first: two cores)."""
    guests.create_guest(SOURCE, nics("nic1", "nic2", "nic3"))
    guests.boot(SOURCE)
    names = guests.guest_names(SOURCE)
    template = guests.vms.CreateTemplate(vms_pb2.CreateTemplateRequest(name="t-pci", from_vm=SOURCE), timeout=60)
    snapshot = guests.vms.CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm=SOURCE, name="s-pci"), timeout=60)
    guests.vms.StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=SOURCE, force=True), timeout=60)
    guests.vms.CreateTemplate(vms_pb2.CreateTemplateRequest(
        name="t-names", nics=nics("nic10", "nic2", "nic1"), memory_mib=128, boot=vm_pb2.BootSource(test_guest=True)),
        timeout=60)
    guests.create_from(FROM_TEMPLATE, template="t-pci")
    guests.create_from(FROM_NAME_TEMPLATE, template="t-names")
    guests.create_from(FROM_SNAPSHOT, snapshot="s-pci")
    guests.boot(FROM_TEMPLATE, FROM_NAME_TEMPLATE, FROM_SNAPSHOT)
    return Source(names, template, snapshot)


def check_guest_order(g: GuestLab, vm: str) -> vms_pb2.CheckOrderResponse:
    return g.vms.CheckOrder(vms_pb2.CheckOrderRequest(vm=vm, guest=True), timeout=60)


def live_aliases(g: GuestLab, vm: str) -> set[str]:
    xml = g.in_host("virsh", "-c", g.libvirt_uri, "dumpxml", vm)
    return {i.find("alias").get("name") for i in ET.fromstring(xml).findall("devices/interface")}


def remove_nic(g: GuestLab, vm: str, nic: str) -> vms_pb2.VirtualMachine:
    """RemoveNic until it completes: a guest slower than the manager's grace leaves it unplugging, and the
    admin's repeat finishes it once the guest let go. Each reply is checked against the guest."""
    reply = g.vms.RemoveNic(vms_pb2.RemoveNicRequest(vm=vm, nic=nic), timeout=120)
    while any(n.name == nic for n in reply.nics):
        held = next(n for n in reply.nics if n.name == nic)
        assert held.unplugging, f"{nic} is neither removed nor unplugging: {held}"
        until(f"the guest of {vm} releases {nic}", lambda: held.mac not in g.macs_in_guest(vm))
        reply = g.vms.RemoveNic(vms_pb2.RemoveNicRequest(vm=vm, nic=nic), timeout=120)
    return reply


# --- seed 004 from inside the guest ----------------------------------------------------------------


def test_the_source_guest_names_its_nics_in_pci_order_and_its_template_and_snapshot_keep_them(guests, source):
    src = guests.show(SOURCE)
    by_pci = sorted(src.nics, key=lambda n: n.pci_address)
    assert source.names == {n.name: f"eth{i}" for i, n in enumerate(by_pci)}
    assert {n.name: n.guest_name for n in source.template.nics} == source.names
    assert {n.name: n.guest_name for n in source.snapshot.nics} == source.names
    assert all(n.pci_address for n in source.template.nics) and all(n.pci_address for n in source.snapshot.nics)


@pytest.mark.parametrize("vm", [FROM_TEMPLATE, FROM_SNAPSHOT])
def test_a_vm_from_a_source_with_pci_addresses_has_its_source_guests_names(lab, guests, source, vm):
    assert guests.guest_names(vm) == source.names
    report = check_guest_order(guests, vm)
    assert report.in_order and not report.mismatches
    assert {n.name: n.guest_name for n in report.actual} == source.names
    said = vf(lab, "vm", "check-order", vm, "--guest")
    assert "in order" in said.stdout


def test_a_vm_from_a_template_without_pci_addresses_names_its_nics_in_vnic_name_order(lab, guests, source):
    assert guests.guest_names(FROM_NAME_TEMPLATE) == {"nic1": "eth0", "nic2": "eth1", "nic10": "eth2"}
    assert vf(lab, "vm", "check-order", FROM_NAME_TEMPLATE).returncode == 0
    with pytest.raises(grpc.RpcError) as err:   # nothing to compare the guest with: say so, not "in order"
        check_guest_order(guests, FROM_NAME_TEMPLATE)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "keeps no guest names" in err.value.details()


# --- hot-unplug completes ----------------------------------------------------------------------------


def test_remove_nic_on_a_running_guest_frees_the_vnic_and_its_mac_once_the_guest_released_it(guests, source):
    vm = FROM_SNAPSHOT
    mac = next(n.mac for n in guests.show(vm).nics if n.name == "nic3")
    assert mac in guests.macs_in_guest(vm)

    reply = remove_nic(guests, vm, "nic3")
    # The manager dropped the vNIC only once the guest had let go: the device is gone from the guest
    # and from the live domain, and the other two are as they were.
    assert mac not in guests.macs_in_guest(vm)
    assert "ua-nic3" not in live_aliases(guests, vm)
    assert [n.name for n in reply.nics] == ["nic1", "nic2"]
    assert guests.guest_names(vm) == {k: v for k, v in source.names.items() if k != "nic3"}

    # Its MAC is free: another VM's new vNIC takes it, and that guest sees it.
    taken = guests.vms.AddNic(vms_pb2.AddNicRequest(vm=FROM_NAME_TEMPLATE, nic=vms_pb2.Nic(
        name="nic20", network=NETWORK, mac=mac)), timeout=120)
    assert next(n.mac for n in taken.nics if n.name == "nic20") == mac
    until(f"the guest of {FROM_NAME_TEMPLATE} sees the plugged NIC", lambda: mac in guests.macs_in_guest(
        FROM_NAME_TEMPLATE))


# --- an order change caught -------------------------------------------------------------------------


def test_an_unplug_and_replug_that_changes_the_guests_names_is_caught_by_check_order_guest_and_the_audit(
        lab, guests, source):
    vm = FROM_TEMPLATE
    assert check_guest_order(guests, vm).in_order
    # eth0 and eth1 go; re-plugged the other way round, nic2 takes the lowest free name, eth0.
    remove_nic(guests, vm, "nic1")
    remove_nic(guests, vm, "nic2")
    for name in ("nic2", "nic1"):
        guests.vms.AddNic(vms_pb2.AddNicRequest(vm=vm, nic=vms_pb2.Nic(name=name, network=NETWORK)), timeout=120)
        names = guests.guest_names(vm)   # once every vNIC, the plugged one included, is named
    assert (names["nic1"], names["nic2"]) == (source.names["nic2"], source.names["nic1"])

    report = check_guest_order(guests, vm)
    assert not report.in_order
    wrong = {report.actual[m.position].name: (m.expected, m.found) for m in report.mismatches}
    assert wrong == {"nic1": (source.names["nic1"], names["nic1"]),
                     "nic2": (source.names["nic2"], names["nic2"])}
    said = vf(lab, "vm", "check-order", vm, "--guest", check=False)
    assert said.returncode == 1 and said.stdout.count("MISMATCH") == 2, said.stdout + said.stderr

    findings = vfj(lab, "audit", "--category", "guest-nic")["findings"]
    assert sorted(f["object"] for f in findings) == [f"vm {vm}: guest name of vNIC nic1",
                                                     f"vm {vm}: guest name of vNIC nic2"]
