"""Live migration of a running guest: through the manager, against bare `virsh migrate --live --p2p`.

Run as `python -m bench.migrate` (as root, in the project's environment). It brings up a
throwaway lab with two hosts (each its own libvirtd listening with TLS on its lab address,
certificates from the manager's CA), boots a 256 MiB test guest on host1 with its address
on ovirtmgmt, and pings it every 10 ms from the lab switch's namespace. Then, rounds
interleaved so both paths see the same machine load, the same domain moves between the
same two libvirtds:

- **virtfleet**: `MigrateVirtualMachine` on the manager's gRPC API (checks, record, the
  source agent's peer-to-peer migration, progress polled, the record moved in one
  transaction), host1 → host2, then back;
- **virsh**: `virsh migrate --live --p2p --persistent --undefinesource` with the same
  destination and data URIs and the same certificates, host1 → host2, then back (the
  manager's record ends where it started, so the next round is consistent).

For each migration: its wall time (call to return), the downtime libvirt measured (the
completed job's statistics, read on the destination), and the longest run of lost pings
(10 ms apart) — the downtime a client of the guest sees.

Last line: {"migrate_s": …, "virsh_s": …, "migrate": ratio of medians, …}; target ≤ 1.15.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import libvirt
from virtfleet.v1 import vm_pb2, vms_pb2, vms_pb2_grpc

from agent.guest.cmdline import NICS_UP_MARKER, static_ip_arg
from agent.guest.image import ensure_guest
from bench.guest import size, wait_marker
from bench.labhost import lab_host
from manager.lab.layout import LabLayout
from manager.lab.namespaces import SWITCH_BRIDGE
from manager.lab.pinger import gap_ms

TARGET = 1.15
VM = "bench-migrate"
MEMORY_MIB = 256
MAC = "52:54:00:be:0d:01"
GUEST_ADDRESS = "192.0.2.200"
SWITCH_ADDRESS = "192.0.2.250/24"
PING_INTERVAL_S = 0.01
HOSTS = ("host1", "host2")


@dataclass(frozen=True)
class Sample:
    wall_s: float
    downtime_ms: int          # libvirt's, from the completed job
    lost_ms: int              # the longest run of unanswered pings × the interval


class Pinger:
    """`ping -i 0.01` from the switch namespace; the longest run of missing replies within a window."""

    def __init__(self, netns: str, address: str) -> None:
        self._proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "manager.lab.pinger",
                                       address, "--interval", str(PING_INTERVAL_S)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._replies: list[tuple[float, int]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            m = re.match(r"reply seq=(\d+)", line)
            if m:
                self._replies.append((time.monotonic(), int(m.group(1))))

    def answering(self, wait_s: float = 60.0) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._replies and time.monotonic() - self._replies[-1][0] < 0.5:
                return
            time.sleep(0.05)
        raise SystemExit(f"the guest at {GUEST_ADDRESS} does not answer pings")

    def longest_gap_ms(self, since: float, until: float) -> int:
        """The longest run of sequence numbers missing between replies received in [since, until + 1 s]."""
        seqs = [seq for t, seq in self._replies if since <= t <= until + 1.0]
        return gap_ms(seqs, PING_INTERVAL_S) if len(seqs) >= 2 else -1

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def virtfleet_migrate(vms: vms_pb2_grpc.VmServiceStub, to: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    last = None
    for last in vms.MigrateVirtualMachine(vms_pb2.MigrateVirtualMachineRequest(name=VM, to=to), timeout=600):
        pass
    elapsed = time.perf_counter() - t0
    if last is None or not last.done:
        raise SystemExit(f"the manager's migration to {to} ended without its final message: {last}")
    return elapsed, int(last.downtime_ms)


def virsh_migrate(source_uri: str, dest_address: str, pki_dir: str, dest: libvirt.virConnect) -> tuple[float, int]:
    command = ["virsh", "-q", "-c", source_uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
               VM, f"qemu+tls://{dest_address}/system?pkipath={pki_dir}", f"tcp://{dest_address}"]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"virsh migrate failed: {done.stderr.strip()}")
    stats = dest.lookupByName(VM).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    return elapsed, int(stats.get("downtime", -1))


def timed(pinger: Pinger, run) -> Sample:
    since = time.monotonic()
    wall, downtime = run()
    until = time.monotonic()
    pinger.answering()
    return Sample(wall, downtime, pinger.longest_gap_ms(since, until))


def stats(samples: list[Sample], attr: str) -> tuple[float, float, float]:
    values = [getattr(s, attr) for s in samples]
    return statistics.median(values), min(values), max(values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.migrate", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5,
                   help="rounds (≥ 5); each migrates there and back through each path, paths interleaved")
    args = p.parse_args(argv)

    print("building (or finding) the cached test guest …", flush=True)
    ensure_guest()
    with lab_host("migrate", hosts=2, guest=True) as lab:
        layout: LabLayout = lab.layout
        state = layout.read_state()
        assert state is not None
        address = {h.name: h.address for h in state.hosts}
        uri = {h.name: h.libvirt_uri for h in state.hosts}
        pki = {h.name: str(layout.agent_pki(h.name) / "libvirt") for h in state.hosts}
        subprocess.run(["ip", "netns", "exec", state.switch_netns, "ip", "addr", "add", SWITCH_ADDRESS,
                        "dev", SWITCH_BRIDGE], check=True)
        vms = vms_pb2_grpc.VmServiceStub(lab.channel)
        vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(
            name=VM, memory_mib=MEMORY_MIB, vcpus=1,
            boot=vm_pb2.BootSource(test_guest=True, cmdline=static_ip_arg({MAC: f"{GUEST_ADDRESS}/24"})),
            nics=[vms_pb2.Nic(name="nic1", network="ovirtmgmt", mac=MAC)]), timeout=60)
        console = layout.agent_state(HOSTS[0]) / "console" / f"{VM}.log"
        since = size(console)
        t0 = time.perf_counter()
        vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=VM, host=HOSTS[0]), timeout=180)
        wait_marker(console, since, t0)
        print(f"guest up ({NICS_UP_MARKER!r}) in {time.perf_counter() - t0:.1f} s; pinging it every 10 ms",
              flush=True)
        pinger = Pinger(state.switch_netns, GUEST_ADDRESS)
        try:
            pinger.answering()
            a, b = HOSTS
            # warm-up: one of each, there and back, not counted
            timed(pinger, lambda: virtfleet_migrate(vms, b))
            timed(pinger, lambda: virtfleet_migrate(vms, a))
            timed(pinger, lambda: virsh_migrate(uri[a], address[b], pki[a], lab.conns[b]))
            timed(pinger, lambda: virsh_migrate(uri[b], address[a], pki[b], lab.conns[a]))
            vf: list[Sample] = []
            vs: list[Sample] = []
            for r in range(args.rounds):
                order = ("vf", "vs") if r % 2 == 0 else ("vs", "vf")
                for path in order:
                    if path == "vf":
                        vf.append(timed(pinger, lambda: virtfleet_migrate(vms, b)))
                        vf.append(timed(pinger, lambda: virtfleet_migrate(vms, a)))
                    else:
                        vs.append(timed(pinger, lambda: virsh_migrate(uri[a], address[b], pki[a], lab.conns[b])))
                        vs.append(timed(pinger, lambda: virsh_migrate(uri[b], address[a], pki[b], lab.conns[a])))
                print(f"round {r + 1}: virtfleet {vf[-2].wall_s:.2f}/{vf[-1].wall_s:.2f} s, "
                      f"virsh {vs[-2].wall_s:.2f}/{vs[-1].wall_s:.2f} s", flush=True)
            domain_type = libvirt.open(uri[a]).lookupByName(VM).XMLDesc().split("type='", 1)[1].split("'", 1)[0]
        finally:
            pinger.stop()

    vf_s, vf_best, vf_worst = stats(vf, "wall_s")
    vs_s, vs_best, vs_worst = stats(vs, "wall_s")
    ratios = [x.wall_s / y.wall_s for x, y in zip(vf, vs)]
    ratio = vf_s / vs_s
    print()
    print(f"live migration of a {MEMORY_MIB} MiB test guest ({domain_type}) between two lab hosts' libvirtds, "
          f"{args.rounds} interleaved rounds × 2 directions")
    print(f"{'path':<34}{'median s':>9}{'best s':>8}{'worst s':>8}{'downtime p50/max ms':>21}"
          f"{'lost pings p50/max ms':>23}")
    for label, samples, (med, best, worst) in (("virtfleet (manager→agent→libvirt)", vf, (vf_s, vf_best, vf_worst)),
                                               ("virsh migrate --live --p2p", vs, (vs_s, vs_best, vs_worst))):
        dt, _, dt_max = stats(samples, "downtime_ms")
        lost, _, lost_max = stats(samples, "lost_ms")
        print(f"{label:<34}{med:>9.2f}{best:>8.2f}{worst:>8.2f}{f'{dt:.0f}/{dt_max:.0f}':>21}"
              f"{f'{lost:.0f}/{lost_max:.0f}':>23}")
    print(f"ratio {ratio:.3f}× of medians, {min(ratios):.3f}× best pair, per-pair median "
          f"{statistics.median(ratios):.3f}× (target ≤ {TARGET}×): {'met' if ratio <= TARGET else 'NOT met'}")
    print(json.dumps({
        "migrate_s": round(vf_s, 3), "virsh_s": round(vs_s, 3), "migrate": round(ratio, 3),
        "migrate_best_s": round(vf_best, 3), "virsh_best_s": round(vs_best, 3), "migrate_best": round(min(ratios), 3),
        "migrate_pair_median": round(statistics.median(ratios), 3),
        "downtime_ms_p50": stats(vf, "downtime_ms")[0], "downtime_ms_max": stats(vf, "downtime_ms")[2],
        "virsh_downtime_ms_p50": stats(vs, "downtime_ms")[0], "virsh_downtime_ms_max": stats(vs, "downtime_ms")[2],
        "lost_ping_ms_p50": stats(vf, "lost_ms")[0], "lost_ping_ms_max": stats(vf, "lost_ms")[2],
        "virsh_lost_ping_ms_p50": stats(vs, "lost_ms")[0], "virsh_lost_ping_ms_max": stats(vs, "lost_ms")[2],
        "rounds": args.rounds, "memory_mib": MEMORY_MIB, "domain_type": domain_type,
        "cpus": len(os.sched_getaffinity(0))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
