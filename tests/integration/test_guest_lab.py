"""The test guest on a real lab host, through the agent's VmAgentService as the manager calls it.

One guest with three NICs on a bridge of the host's namespace, booted once and
reused by every test here (TCG on two shared cores: a boot is ~5 s of a core).
The host pings it, its guest agent names its NICs, a hot-unplugged NIC is released
by the guest and a hot-plugged one takes the lowest free ethN.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from agent.virt.connection import read_kvm_facts
from tests.fixtures.guest import (console_path, console_size, guest_exec, nic_lines, static_ip_arg,
                                  wait_guest_agent, wait_nics_up)
from virtfleet.v1 import vm_pb2

from .conftest import sh

BRIDGE = "br-guest"
HOST_ADDR = "198.51.100.1/24"
VM = "guest1"
MACS = [f"52:54:00:c5:00:{i:02x}" for i in range(1, 5)]   # the fourth is hot-plugged later
ADDRS = [f"198.51.100.{10 + i}/24" for i in range(1, 5)]
WAIT_S = 60   # bounds for things that happen in well under a second; not assertions


_ECHO = """
import os, socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
ident = os.getpid() & 0xffff
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"virtfleet"
packet = body[:2] + struct.pack("!H", csum(body + b"\\0")) + body[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(float(sys.argv[2]))
s.sendto(packet, (sys.argv[1], 0))
while True:
    data, peer = s.recvfrom(2048)
    icmp = data[(data[0] & 0x0f) * 4:]
    if peer[0] == sys.argv[1] and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        break
"""


def ping(netns: str, address: str, timeout_s: float = 5.0) -> bool:
    """One ICMP echo from inside `netns` (a raw socket: the machine has no ping)."""
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _ECHO, address, str(timeout_s)],
                          capture_output=True).returncode == 0


def nic(name: str, mac: str) -> vm_pb2.VNic:
    return vm_pb2.VNic(name=name, kind=vm_pb2.VNIC_KIND_BRIDGE, source=BRIDGE, mac=mac)


def until(what: str, check, wait_s: float = WAIT_S):
    deadline = time.monotonic() + wait_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {wait_s} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def guest(vm_lab, vm_agent):
    sh("ip", "-n", vm_lab.netns, "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "-n", vm_lab.netns, "addr", "add", HOST_ADDR, "dev", BRIDGE)
    sh("ip", "-n", vm_lab.netns, "link", "set", BRIDGE, "up")
    console = console_path(vm_lab.layout.agent_state(vm_lab.host), VM)
    cmdline = static_ip_arg(dict(zip(MACS, ADDRS)))
    spec = vm_pb2.VmSpec(name=VM, memory_mib=128, vcpus=1, domain_type="auto",
                         nics=[nic(f"nic{i}", MACS[i - 1]) for i in range(1, 4)],
                         boot=vm_pb2.BootSource(test_guest=True, cmdline=cmdline))
    try:
        defined = vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))
        since = console_size(console)
        started_at = time.monotonic()
        started = vm_agent.StartVm(vm_pb2.StartVmRequest(name=VM))
        lines = wait_nics_up(console, since)
        print(f"\ncold boot to 'nics up': {time.monotonic() - started_at:.1f} s (StartVm to the console line)")
        yield {"lab": vm_lab, "defined": defined, "started": started, "console": console, "lines": lines}
    finally:
        names = {v.name: v for v in vm_agent.ListVms(vm_pb2.ListVmsRequest()).vms}
        if VM in names:
            if names[VM].state != vm_pb2.VM_STATE_SHUTOFF:
                vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name=VM))
            vm_agent.UndefineVm(vm_pb2.UndefineVmRequest(name=VM))
        sh("ip", "-n", vm_lab.netns, "link", "del", BRIDGE)


def guest_ifaces(vm_agent) -> vm_pb2.GetGuestInterfacesResponse:
    return vm_agent.GetGuestInterfaces(vm_pb2.GetGuestInterfacesRequest(vm=VM, timeout_s=5))


def test_the_guest_boots_with_all_nics_up_under_the_domain_type_auto_picks(guest):
    kvm = read_kvm_facts()
    assert guest["started"].domain_type == ("kvm" if kvm.dev_kvm and not kvm.paravirtual else "qemu")
    assert nic_lines(guest["lines"]) == {f"eth{i}": [MACS[i], "carrier", ADDRS[i]] for i in range(3)}


def test_the_hosts_bridge_namespace_pings_every_guest_nic(guest):
    for addr in ADDRS[:3]:
        assert ping(guest["lab"].netns, addr.split("/")[0]), addr


def test_the_guest_agent_names_the_nics_eth0_on_in_pci_slot_order(guest, vm_agent):
    wait_guest_agent(guest["lab"].libvirt_uri, VM)
    found = guest_ifaces(vm_agent)
    assert found.agent_connected
    by_slot = sorted(guest["started"].nics, key=lambda n: (n.pci.bus, n.pci.slot, n.pci.function))
    assert [(i.name, i.mac) for i in found.interfaces] == [(f"eth{k}", n.mac) for k, n in enumerate(by_slot)]
    assert [i.addresses[0] for i in found.interfaces] == ADDRS[:3]


def test_guest_exec_runs_busybox_in_the_guest_which_pings_the_host(guest):
    wait_guest_agent(guest["lab"].libvirt_uri, VM)
    code, out, _ = guest_exec(guest["lab"].libvirt_uri, VM, ["/bin/cat", "/sys/class/net/eth0/address"])
    assert (code, out.strip()) == (0, MACS[0])
    code, out, err = guest_exec(guest["lab"].libvirt_uri, VM, ["ping", "-c", "1", "-W", "5", HOST_ADDR.split("/")[0]])
    assert code == 0, out + err


def test_hot_unplug_is_released_by_the_guest_and_a_plugged_nic_takes_the_lowest_free_name(guest, vm_agent):
    lab = guest["lab"]
    vm_agent.DetachNic(vm_pb2.DetachNicRequest(vm=VM, nic="nic2"))
    until("the guest released nic2 (gone from the live XML)",
          lambda: all(i.find("alias").get("name") != "ua-nic2" for i in lab.live_interfaces(VM)))
    until("the guest no longer lists eth1",
          lambda: [i.name for i in guest_ifaces(vm_agent).interfaces] == ["eth0", "eth2"])

    since = console_size(guest["console"])
    plugged = vm_agent.AttachNic(vm_pb2.AttachNicRequest(vm=VM, nic=nic("nic4", MACS[3])))
    assert {n.name for n in plugged.nics} == {"nic1", "nic3", "nic4"}
    until("the guest configured the plugged NIC",
          lambda: nic_lines(guest["console"].read_bytes()[since:].decode(errors="replace").splitlines()))
    found = guest_ifaces(vm_agent)
    assert [(i.name, i.mac) for i in found.interfaces] == [("eth0", MACS[0]), ("eth1", MACS[3]), ("eth2", MACS[2])]
    assert ping(lab.netns, ADDRS[3].split("/")[0])
