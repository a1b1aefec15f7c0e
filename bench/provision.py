"""Bulk provisioning: 1,000 VMs × 4 vNICs from a template with PCI addresses, manager and database only.

Run as `python -m bench.provision` (as root, in the project's environment). It starts
a throwaway PostgreSQL cluster (fsync off, like the test suite) unless
VIRTFLEET_TEST_DSN names a server, and measures in the same run:

- **bulk**: `CreateVirtualMachines` through the real gRPC API of an in-process
  manager — one transaction per batch of 100 VMs, the batch's MACs in one
  allocation, one INSERT for the VMs and one COPY for the vNICs;
- **baseline**: the same VMs one per transaction, one INSERT per row (the VM,
  then each vNIC), MACs allocated per VM — what a straightforward loop does.

The two paths take turns for `--rounds` rounds (default 5); medians and bests are reported.
Last line: {"vms": 1000, "nics_per_vm": 4, "vms_per_s": …, "baseline_vms_per_s": …, "speedup": …, …}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from manager.api.listeners import serve
from manager.app import ManagerApp
from manager.client import open_channel
from manager.config import ManagerConfig
from manager.domain import vmorder
from manager.lab.postgres import throwaway_database, throwaway_server
from manager.service import macpools
from manager.store.database import open_pool
from virtfleet import macaddr
from virtfleet.v1 import vms_pb2, vms_pb2_grpc

VMS = 1000
NICS = 4
BASELINE_VMS = 200
TARGET = 500.0


def template_nics() -> list[vms_pb2.Nic]:
    """4 vNICs whose PCI order differs from their name order, so the rules have work to do."""
    slots = [6, 3, 5, 4]
    return [vms_pb2.Nic(name=f"nic{i + 1}", network="ovirtmgmt", pci_address=f"0000:00:{slots[i]:02x}.0")
            for i in range(NICS)]


def bench_bulk(dsn: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="vfb-mgr-") as d:
        cfg = ManagerConfig(dsn=dsn, listen=f"{d}/manager.sock", pki_dir=Path(d) / "pki")
        app = ManagerApp.create(cfg)
        listeners = serve(app, cfg, max_workers=4)
        channel = open_channel(f"unix://{cfg.listen}")
        try:
            api = vms_pb2_grpc.VmServiceStub(channel)
            api.CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", nics=template_nics()))
            started = time.perf_counter()
            last = None
            for last in api.CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
                    name="vm", count=VMS, template="t1")):
                pass
            elapsed = time.perf_counter() - started
            assert last is not None and last.created == VMS
            sample = api.GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name=f"vm-{VMS}"))
            macs = [macaddr.parse(n.mac) for n in sample.nics]
            assert macs == sorted(macs) and [n.pci_address for n in sample.nics] == sorted(
                n.pci_address for n in template_nics())
        finally:
            channel.close()
            listeners.stop(grace=None)
            app.close()
    with psycopg.connect(dsn) as conn:
        vnics = conn.execute("SELECT count(*) FROM vnics").fetchone()[0]
    return elapsed, vnics


def bench_baseline(dsn: str) -> tuple[float, int]:
    """One VM per transaction, each row its own INSERT."""
    open_pool(dsn, min_size=1, max_size=1).close()   # migrations
    source = [vmorder.SourceNic(n.name, n.pci_address) for n in template_nics()]
    with psycopg.connect(dsn) as conn:
        cluster_id, net_id = conn.execute(
            "SELECT c.id, n.id FROM clusters c JOIN networks n ON n.datacenter_id = c.datacenter_id "
            "WHERE c.name = 'Default' AND n.name = 'ovirtmgmt'").fetchone()
        conn.commit()
        started = time.perf_counter()
        for i in range(1, BASELINE_VMS + 1):
            with conn.transaction():
                macs = macpools.allocate_macs(conn, cluster_id, NICS)
                plan = vmorder.plan_new_vm(vmorder.SourceKind.TEMPLATE, source, macs)
                vm_id = conn.execute(
                    "INSERT INTO vms (name, cluster_id, memory_mib, vcpus) VALUES (%s, %s, 64, 1) RETURNING id",
                    (f"base-{i}", cluster_id)).fetchone()[0]
                for p in plan.nics:
                    conn.execute(
                        """INSERT INTO vnics (vm_id, name, position, kind, network_id, mac, pci_address)
                           VALUES (%s, %s, %s, 'bridge', %s, %s, %s)""",
                        (vm_id, p.source.name, p.position, net_id, p.mac, p.pci_address))
        elapsed = time.perf_counter() - started
        vnics = conn.execute("SELECT count(*) FROM vnics").fetchone()[0]
    return elapsed, vnics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.provision")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of bulk and baseline (>= 5)")
    args = parser.parse_args(argv)
    rates: dict[str, list[float]] = {"bulk": [], "baseline": []}
    speedups: list[float] = []
    with throwaway_server(prefix="vfb-pg-") as server:
        for _ in range(args.rounds):  # each round: a fresh database for each path, one after the other
            with throwaway_database(server, prefix="vfb_") as dsn:
                bulk_s, bulk_nics = bench_bulk(dsn)
            with throwaway_database(server, prefix="vfb_") as dsn:
                base_s, base_nics = bench_baseline(dsn)
            assert bulk_nics == VMS * NICS and base_nics == BASELINE_VMS * NICS
            rates["bulk"].append(VMS / bulk_s)
            rates["baseline"].append(BASELINE_VMS / base_s)
            speedups.append(rates["bulk"][-1] / rates["baseline"][-1])
    rate, base_rate = statistics.median(rates["bulk"]), statistics.median(rates["baseline"])
    rows = [
        ("bulk: gRPC CreateVirtualMachines, 100 VMs per transaction", VMS, rate, max(rates["bulk"])),
        ("baseline: one VM per transaction, one INSERT per row", BASELINE_VMS, base_rate, max(rates["baseline"])),
    ]
    print(f"provisioning from a template with PCI addresses, {NICS} vNICs per VM, MACs from the cluster pool; "
          f"{args.rounds} interleaved rounds")
    print(f"{'path':<58} {'VMs':>6} {'median VMs/s':>13} {'best VMs/s':>11}")
    for name, n, r, b in rows:
        print(f"{name:<58} {n:>6} {r:>13.0f} {b:>11.0f}")
    print(f"speedup per round: median {statistics.median(speedups):.1f}x, best {max(speedups):.1f}x; "
          f"target {TARGET:.0f} VMs/s: {'met' if rate >= TARGET else 'NOT met'}"
          f" (PostgreSQL with fsync off unless VIRTFLEET_TEST_DSN is set)")
    print(json.dumps({"vms": VMS, "nics_per_vm": NICS, "rounds": args.rounds, "vms_per_s": round(rate, 1),
                      "vms_per_s_best": round(max(rates["bulk"]), 1), "baseline_vms_per_s": round(base_rate, 1),
                      "speedup": round(statistics.median(speedups), 2), "speedup_best": round(max(speedups), 2)}))


if __name__ == "__main__":
    main()
