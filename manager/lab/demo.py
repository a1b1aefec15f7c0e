"""The README's first command: a lab datacenter of two hosts with ovirtmgmt on each.

Then a VM network on both hosts, and — when the lab runs libvirt — two VMs from a
template, so the host reports show their vnet taps on the bridges (seed 004). The VMs
boot the test guest (`--guest`: a Debian kernel, busybox and qemu-guest-agent the agent
builds and caches at first use), so `vm show` lists what the guest itself calls each
NIC. Two guests only: where KVM is paravirtual they run under TCG, which costs CPU.

It runs the same `virtfleet` commands an admin would type, and prints them.
The lab stays up afterwards for exploring; the last lines say how to take it down.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .lab import is_up
from .layout import LabLayout

CLI = str(Path(sys.executable).with_name("virtfleet"))


def run(*args: str) -> None:
    print(f"\n$ virtfleet {shlex.join(args)}", flush=True)
    subprocess.run([CLI, *args], check=True)


GUEST_BOOT_WAIT_S = 90   # a cold test-guest build (~20 s) plus a TCG boot (~5 s), with room on a busy machine


def wait_for_guest_names(vm: str, timeout_s: float = GUEST_BOOT_WAIT_S) -> bool:
    """Until the VM's guest agent has named every NIC (the demo's own pacing, not a test's assertion)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        shown = subprocess.run([CLI, "vm", "show", vm, "-o", "json"], capture_output=True, text=True)
        if shown.returncode == 0:
            nics = json.loads(shown.stdout).get("nics", [])
            if nics and all(n.get("guest_name") for n in nics):
                return True
        time.sleep(1)
    print(f"(the guest of {vm} has not named its NICs within {timeout_s:.0f} s; `vm show {vm}` later shows them)")
    return False


def libvirt_in_lab(layout: LabLayout) -> bool:
    state = layout.read_state()
    return bool(state and state.hosts and all(h.libvirt_uri for h in state.hosts))


def main() -> int:
    layout = LabLayout.from_env()
    if is_up(layout) or layout.state_file.exists():
        print(f"a lab is already up in {layout.state_dir}; take it down first:\n  {CLI} lab down", file=sys.stderr)
        return 1
    try:
        run("lab", "up", "--hosts", "2", "--nics", "2", "--guest")
        run("host", "list")
        for host in ("host1", "host2"):
            run("host", "setup-management", host, "--nic", "eth0")
        run("network", "create", "vmnet", "--description", "guests")
        for host in ("host1", "host2"):
            run("host", "setup-networks", host, "--attach", "vmnet=eth1", "--connectivity-timeout", "10")
        run("host", "networks", "host1")
        if libvirt_in_lab(layout):
            run("template", "create", "small", "--guest", "--memory", "128", "--nic", "nic1=ovirtmgmt", "--nic",
                "nic2=vmnet", "--nic", "nic10=vmnet")
            run("vm", "create", "web", "--template", "small", "--count", "2", "--start")
            wait_for_guest_names("web-1")
            run("vm", "show", "web-1")
            run("vm", "placement", "web-1", "--purpose", "migrate")
            run("vm", "migrate", "web-1")              # live, to the host placement chooses
            run("vm", "show", "web-1")                 # same MACs, PCI addresses and guest names, another host
        for host in ("host1", "host2"):
            run("host", "report", host)
        run("host", "list")
        run("audit")
        run("lab", "status")
    except subprocess.CalledProcessError as exc:
        print(f"\ndemo failed at: {shlex.join(exc.cmd[1:])}", file=sys.stderr)
        return 1
    print(f"\nThe lab is still up. Explore it with {CLI} (try `host show host1`),")
    print(f"or look inside a host: ip netns exec {layout.prefix}host1 ip addr show")
    print(f"Tear it down with:\n  {CLI} lab down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
