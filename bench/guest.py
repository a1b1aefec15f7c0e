"""Cold boot of the test guest to "all NICs up": through the manager, against bare libvirt of the same XML.

Run as `python -m bench.guest` (as root, in the project's environment). It brings up a
throwaway lab host with its own libvirtd, puts ovirtmgmt on it, creates a VM with 3 vNICs
booting the cached test guest (`--guest`: Debian kernel + busybox/qemu-ga initramfs, built
at first use) with static addresses by MAC on its command line, and measures in the same
run, rounds interleaved so both see the same machine load:

- **virtfleet**: `StartVirtualMachine` on the manager's gRPC API (manager → agent →
  libvirt → QEMU) until the guest's serial console says `virtfleet-guest: nics up`;
  then the VM is destroyed (not timed);
- **libvirt**: the same domain XML (the agent's definition, renamed, its console in
  another file) with libvirt-python on the same libvirtd: `defineXML` + `create` until
  the same line; then destroy + undefine (not timed).

Both wait on the same signal, read the same way (the console file polled every 20 ms),
so the ratio is what the manager and agent add to a boot. The guest runs under the
domain type `auto` picks (TCG where /dev/kvm is paravirtual or absent).

Last line: {"guest_boot_s": …, "libvirt_boot_s": …, "guest": ratio of medians, …}; target ≤ 1.15.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from agent.guest.cmdline import NICS_UP_MARKER, static_ip_arg
from agent.guest.image import ensure_guest
from bench.labhost import HOST, lab_host, renamed_definition
from virtfleet.v1 import vm_pb2, vms_pb2, vms_pb2_grpc

NICS = 3
TARGET = 1.15
VF_VM = "bench-guest"
LV_VM = "bench-guest-lv"
MACS = [f"52:54:00:be:0c:{i:02x}" for i in range(1, NICS + 1)]
BOOT_LIMIT_S = 300


def wait_marker(console: Path, since: int, t0: float) -> float:
    """Seconds from t0 until the console (from byte `since`) has the "nics up" line."""
    while time.perf_counter() - t0 < BOOT_LIMIT_S:
        if console.exists():
            with open(console, "rb") as f:
                f.seek(since)
                if NICS_UP_MARKER.encode() in f.read():
                    return time.perf_counter() - t0
        time.sleep(0.02)
    raise SystemExit(f"no {NICS_UP_MARKER!r} in {console} within {BOOT_LIMIT_S} s")


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def virtfleet_round(vms: vms_pb2_grpc.VmServiceStub, console: Path, while_running=None) -> float:
    since = size(console)
    t0 = time.perf_counter()
    vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=VF_VM, host=HOST), timeout=120)
    elapsed = wait_marker(console, since, t0)
    if while_running:
        while_running()
    vms.StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=VF_VM, force=True), timeout=120)
    return elapsed


def bare_xml(conn: libvirt.virConnect, console: Path) -> str:
    """The agent's definition of the VM, renamed, without its UUID, its console in `console`."""
    root = renamed_definition(conn, VF_VM, LV_VM)
    for source in root.findall("devices/serial/source"):
        source.set("path", str(console))
    for channel in root.findall("devices/channel/source"):   # the agent's socket path is per VM name
        channel.attrib.pop("path", None)
    return ET.tostring(root, encoding="unicode")


def libvirt_round(conn: libvirt.virConnect, xml: str, console: Path) -> float:
    since = size(console)
    t0 = time.perf_counter()
    dom = conn.defineXML(xml)
    dom.create()
    elapsed = wait_marker(console, since, t0)
    dom.destroy()
    dom.undefine()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.guest", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="measured boots of each kind, interleaved (≥ 5)")
    args = p.parse_args(argv)

    print("building (or finding) the cached test guest …", flush=True)
    ensure_guest()
    cmdline = static_ip_arg({mac: f"198.51.100.{10 + i}/24" for i, mac in enumerate(MACS)})
    with lab_host("guest") as h:
        console = h.layout.agent_state(HOST) / "console" / f"{VF_VM}.log"
        lv_console = h.layout.agent_state(HOST) / "console" / f"{LV_VM}.log"
        vms = vms_pb2_grpc.VmServiceStub(h.channel)
        vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(
            name=VF_VM, memory_mib=128, vcpus=1, boot=vm_pb2.BootSource(test_guest=True, cmdline=cmdline),
            nics=[vms_pb2.Nic(name=f"nic{i}", network="ovirtmgmt", mac=mac)
                  for i, mac in enumerate(MACS, start=1)]), timeout=60)
        captured: list[str] = []
        virtfleet_round(vms, console, lambda: captured.append(bare_xml(h.conn, lv_console)))  # warm-up
        xml = captured[0]
        domain_type = ET.fromstring(xml).get("type")
        libvirt_round(h.conn, xml, lv_console)
        vf, lv = [], []
        for _ in range(args.rounds):
            vf.append(virtfleet_round(vms, console))
            lv.append(libvirt_round(h.conn, xml, lv_console))

    ratios = [a / b for a, b in zip(vf, lv)]
    vf_s, lv_s = statistics.median(vf), statistics.median(lv)
    ratio = vf_s / lv_s
    print()
    print(f"test guest cold boot to {NICS_UP_MARKER!r}, {NICS} vNICs, domain type {domain_type}, "
          f"{args.rounds} interleaved rounds")
    print(f"{'path':<36}{'median s':>10}{'best s':>9}{'worst s':>9}")
    print(f"{'virtfleet (manager→agent→libvirt)':<36}{vf_s:>10.2f}{min(vf):>9.2f}{max(vf):>9.2f}")
    print(f"{'libvirt define + create':<36}{lv_s:>10.2f}{min(lv):>9.2f}{max(lv):>9.2f}")
    print(f"ratio {ratio:.3f}× of medians, {min(ratios):.3f}× best round, per-round median "
          f"{statistics.median(ratios):.3f}× (target ≤ {TARGET}×): {'met' if ratio <= TARGET else 'NOT met'}")
    print(json.dumps({"guest_boot_s": round(vf_s, 3), "libvirt_boot_s": round(lv_s, 3), "guest": round(ratio, 3),
                      "guest_boot_best_s": round(min(vf), 3), "libvirt_boot_best_s": round(min(lv), 3),
                      "guest_best": round(min(ratios), 3), "guest_round_median": round(statistics.median(ratios), 3),
                      "rounds": args.rounds, "nics": NICS, "domain_type": domain_type,
                      "cpus": len(os.sched_getaffinity(0))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
