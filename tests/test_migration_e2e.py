"""Live migration and host maintenance on a lab (issue 16): real QEMU between the hosts' own libvirtds.

One lab of three hosts for the module. host1 and host2 carry the VM network `vmnet` (eth1);
host3 does not. One test guest (TCG, booted: it has memory worth copying and a guest agent to
ask) with a bridged vNIC on vmnet and a macvtap vNIC (bridge mode on eth2) is migrated and
cancelled and killed around; maintenance uses three diskless VMs, which prove as much there.

- host1 → host2: the guest's devices are on host2's namespace and gone from host1's; the live
  XML's MACs and PCI addresses and the guest's own NIC names are unchanged; a ping from the
  switch namespace every 10 ms keeps being answered (the lost ones are printed, not asserted).
- to host3 (lacks vmnet, its eth2 held in passthrough): refused before anything moves, both reasons listed.
- cancelled during a throttled migration (1 MiB/s): the VM still runs on its source, the record
  is unchanged.
- the manager SIGKILLed during a throttled migration: the restarted manager waits for the job,
  then records the VM where it runs.
- maintenance of a host with three VMs: all move, the host ends `maintenance`, placement avoids
  it; activated, it takes VMs again.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from xml.etree import ElementTree as ET

import grpc
import pytest

from manager.lab import libvirtd
from manager.lab.layout import LabLayout
from manager.lab.namespaces import SWITCH_BRIDGE
from tests.fixtures.guest_lab import GuestLab, until
from tests.fixtures.lab import running_lab, vf, vfj
from virtfleet.v1 import vm_pb2, vms_pb2

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces"),
    pytest.mark.skipif(not libvirtd.available() or not shutil.which("virsh"),
                       reason="libvirtd, QEMU or virsh is not installed"),
]

NETWORK = "vmnet"
GUEST = "mig"
MAC_BRIDGED, MAC_MACVTAP = "52:54:00:99:00:01", "52:54:00:99:00:02"
# One subnet per vNIC (two NICs of a guest on one subnet answer for each other, and which one a reply leaves by
# is the guest's choice): the switch has an address on each, so each vNIC is proven on its own.
IP_BRIDGED, IP_MACVTAP = "10.99.0.10", "10.98.0.11"
SWITCH_IPS = ("10.99.0.1/24", "10.98.0.1/24")
SLOW_WAIT_S = 180


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "3", "--nics", "3", "--libvirt", tag="vfm") as lab:
        vf(lab, "network", "create", NETWORK)
        for host in ("host1", "host2"):
            vf(lab, "host", "setup-networks", host, "--attach", f"{NETWORK}=eth1")
        switch = LabLayout(lab["dir"], lab["prefix"]).switch_netns
        for address in SWITCH_IPS:
            subprocess.run(["ip", "netns", "exec", switch, "ip", "addr", "add", address, "dev", SWITCH_BRIDGE],
                           check=True)
        lab["switch"] = switch
        yield lab


@pytest.fixture(scope="module")
def guest(lab):
    g = GuestLab(lab, host="host1")
    try:
        g.create_guest(GUEST, [vms_pb2.Nic(name="nic1", network=NETWORK, mac=MAC_BRIDGED),
                               vms_pb2.Nic(name="nic2", direct_nic="eth2", mac=MAC_MACVTAP,
                                           mode=vm_pb2.DIRECT_MODE_BRIDGE)],
                       {MAC_BRIDGED: f"{IP_BRIDGED}/24", MAC_MACVTAP: f"{IP_MACVTAP}/24"})
        g.boot(GUEST)
        yield g
    finally:
        g.close()


def libvirt_uri(lab, host: str) -> str:
    return LabLayout(lab["dir"], lab["prefix"]).read_state().host(host).libvirt_uri


def netns(lab, host: str) -> str:
    return LabLayout(lab["dir"], lab["prefix"]).read_state().host(host).netns


def virsh(lab, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", libvirt_uri(lab, host), *args], capture_output=True, text=True,
                          check=check, timeout=60)


def runs_on(lab, host: str, vm: str) -> bool:
    done = virsh(lab, host, "domstate", vm, check=False)
    return done.returncode == 0 and done.stdout.strip() == "running"


def live_nics(lab, host: str, vm: str) -> list[tuple[str, str]]:
    """(MAC, PCI slot) of each interface in the live XML, in its order."""
    dom = ET.fromstring(virsh(lab, host, "dumpxml", vm).stdout)
    return [(i.find("mac").get("address"), i.find("address").get("slot")) for i in dom.iter("interface")]


def links(lab, host: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "exec", netns(lab, host), "ip", "-o", "link"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def findings_about(lab, vm: str) -> list[dict]:
    """The audit's findings (every category) that name the VM: a vNIC device missing or on the wrong host,
    its MACs, a VM on two hosts."""
    return [f for f in vfj(lab, "audit").get("findings", []) if vm in json.dumps(f)]


def answers(lab, address: str) -> bool:
    """Whether `address` answers one of 3 echo requests from the switch's namespace (the lab's pinger)."""
    return subprocess.run(["ip", "netns", "exec", lab["switch"], sys.executable, "-m", "manager.lab.pinger", address,
                           "--interval", "0.2", "--count", "3"], capture_output=True).returncode == 0


def network_view(lab) -> str:
    """What the switch knows of the guest (neighbours, where it learned the guest's MACs), host2's devices with
    their counters and the guest's own neighbours: printed when the guest stops answering."""
    def run(ns: str, *argv: str) -> str:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True).stdout
    fdb = [line for line in run(lab["switch"], "bridge", "fdb", "show").splitlines() if "52:54:00:99" in line]
    view = [run(lab["switch"], "ip", "neigh"), *fdb, run(netns(lab, "host2"), "ip", "-s", "link"),
            virsh(lab, "host2", "domstate", "--reason", GUEST, check=False).stdout]
    try:
        view.append(GuestLab(lab, host="host2").sh(GUEST, "ip neigh; ip route", timeout=20))
    except AssertionError as err:
        view.append(f"the guest's view: {err}")
    return "\n".join(view)


def show(g: GuestLab, vm: str = GUEST) -> vms_pb2.VirtualMachine:
    return g.show(vm)


def migrate(g: GuestLab, vm: str, **kw) -> list[vms_pb2.MigrationProgress]:
    return list(g.vms.MigrateVirtualMachine(vms_pb2.MigrateVirtualMachineRequest(name=vm, **kw), timeout=600))


def record(g: GuestLab, vm: str = GUEST) -> tuple:
    v = show(g, vm)
    return v.host, [(n.name, n.mac, n.pci_address) for n in v.nics]


def migrating(g: GuestLab, vm: str) -> bool:
    return show(g, vm).migrating_to != ""


def throttled(g: GuestLab, vm: str, to: str) -> tuple[threading.Thread, dict]:
    """A 1 MiB/s migration in a thread; its outcome ("progress" list or "error") lands in the dict."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["progress"] = migrate(g, vm, to=to, bandwidth_mib_s=1)
        except grpc.RpcError as err:
            outcome["error"] = err
    t = threading.Thread(target=run, daemon=True)
    t.start()
    until(f"{vm}'s migration to {to} runs", lambda: migrating(g, vm))
    return t, outcome


def test_a_guest_with_a_bridged_and_a_macvtap_vnic_migrates_keeping_its_nics(lab, guest):
    before = show(guest)
    assert before.host == "host1"
    devices = {n.host_device for n in before.nics}
    xml_before = live_nics(lab, "host1", GUEST)
    names_before = guest.guest_names(GUEST)
    ping = subprocess.Popen(["ip", "netns", "exec", lab["switch"], sys.executable, "-m", "manager.lab.pinger",
                             IP_BRIDGED, "--interval", "0.01"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        progress = migrate(guest, GUEST, to="host2")
    finally:
        ping.send_signal(signal.SIGINT)
        summary = ping.communicate(timeout=30)[0].strip().splitlines()[-1]
    print(f"\nmigration: {len(progress)} progress messages, downtime {progress[-1].downtime_ms} ms (libvirt); "
          f"pings every 10 ms from the switch: {summary}")
    assert progress[-1].done and (progress[-1].source, progress[-1].destination) == ("host1", "host2")
    after = show(guest)
    assert (after.host, after.migrating_to) == ("host2", "")
    assert [(n.name, n.mac, n.pci_address) for n in after.nics] == [(n.name, n.mac, n.pci_address)
                                                                   for n in before.nics]
    assert {n.host_device for n in after.nics} <= links(lab, "host2")
    assert not devices & links(lab, "host1")
    assert live_nics(lab, "host2", GUEST) == xml_before
    assert not runs_on(lab, "host1", GUEST)
    assert GuestLab(lab, host="host2").guest_names(GUEST) == names_before
    until("the audit has nothing to say about the guest on either host", lambda: not findings_about(lab, GUEST))
    try:
        until("the guest answers pings on both vNICs after its migration",
              lambda: answers(lab, IP_BRIDGED) and answers(lab, IP_MACVTAP))
    except AssertionError as err:
        raise AssertionError(f"{err}\n{network_view(lab)}") from None


def test_a_destination_lacking_the_network_and_its_nic_is_refused_with_every_reason(lab, guest):
    """host3 lacks vmnet, and its eth2 (the macvtap vNIC's parent) is held in passthrough by another VM: both
    reasons in one answer, and nothing moves."""
    vf(lab, "vm", "create", "pt", "--memory", "64", "--domain-type", "qemu",
       "--nic", "nic1=direct:eth2,mode=passthrough")
    vf(lab, "vm", "start", "pt", "--host", "host3")
    try:
        before = record(guest)
        with pytest.raises(grpc.RpcError) as err:
            migrate(guest, GUEST, to="host3")
        details = err.value.details()
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "host3" in details and NETWORK in details and "eth2" in details and "passed through" in details
        assert record(guest) == before and runs_on(lab, before[0], GUEST) and not runs_on(lab, "host3", GUEST)
        assert not migrating(guest, GUEST)
    finally:
        vf(lab, "vm", "stop", "--force", "pt")


def test_a_cancelled_migration_leaves_the_vm_on_its_source_and_the_record_unchanged(lab, guest):
    before = record(guest)
    source, dest = before[0], "host1" if before[0] == "host2" else "host2"
    thread, outcome = throttled(guest, GUEST, dest)
    vf(lab, "vm", "migrate", "--cancel", GUEST)
    thread.join(timeout=SLOW_WAIT_S)
    assert outcome["error"].code() == grpc.StatusCode.ABORTED and "cancelled" in outcome["error"].details()
    assert record(guest) == before and show(guest).migrating_to == ""
    assert runs_on(lab, source, GUEST) and not runs_on(lab, dest, GUEST)


def test_a_manager_killed_mid_migration_records_the_vm_where_it_runs(lab, guest):
    source = record(guest)[0]
    dest = "host1" if source == "host2" else "host2"
    thread, _ = throttled(guest, GUEST, dest)
    until("libvirt's job runs on the source", lambda: "Unbounded" in virsh(lab, source, "domjobinfo", GUEST).stdout)
    manager_pid = vfj(lab, "lab", "status")["manager"]["pid"]
    os.kill(manager_pid, signal.SIGKILL)
    thread.join(timeout=SLOW_WAIT_S)
    until("the lab restarts the manager", lambda: vfj(lab, "lab", "status")["manager"]["pid"] not in (None,
                                                                                                      manager_pid),
          wait_s=SLOW_WAIT_S)
    virsh(lab, source, "migrate-setspeed", GUEST, "10000")   # let the job finish now that nobody watches it
    fresh = GuestLab(lab, host=dest)

    def settled() -> bool:
        try:
            return not migrating(fresh, GUEST)
        except grpc.RpcError as err:   # the restarted manager not listening yet
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
            return False
    until("the restarted manager settles the migration", settled, wait_s=SLOW_WAIT_S)
    where = [h for h in ("host1", "host2") if runs_on(lab, h, GUEST)]
    assert where == [dest] and show(fresh).host == dest
    fresh.close()


def test_maintenance_moves_every_vm_away_and_placement_avoids_the_host(lab):
    g = GuestLab(lab, host="host3")
    try:
        for i in (1, 2, 3):
            vf(lab, "vm", "create", f"mt{i}", "--memory", "64", "--domain-type", "qemu")
            vf(lab, "vm", "start", f"mt{i}", "--host", "host3")
        out = vf(lab, "host", "maintenance", "host3").stdout
        print(f"\n{out}")
        assert {show(g, f"mt{i}").host for i in (1, 2, 3)} <= {"host1", "host2"}
        assert not any(runs_on(lab, "host3", f"mt{i}") for i in (1, 2, 3))
        assert vfj(lab, "host", "show", "host3")["status"] == "maintenance"
        vf(lab, "vm", "create", "mt4", "--memory", "64", "--domain-type", "qemu")
        vf(lab, "vm", "start", "mt4")
        assert show(g, "mt4").host != "host3"
        vf(lab, "host", "activate", "host3")
        vf(lab, "vm", "stop", "--force", "mt4")
        vf(lab, "vm", "start", "mt4", "--host", "host3")
        assert show(g, "mt4").host == "host3"
    finally:
        g.close()
