"""A real manager process SIGKILLed in the middle of bulk provisioning leaves no half-made VM, no leaked MAC.

Each batch is one transaction holding its VMs, their vNICs and their MAC leases:
after the kill, and once a new manager is up on the same database, every VM has
all its vNICs, every vNIC's MAC is leased, and nothing else is leased.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest

from manager.cli.vms import parse_nic
from manager.client import open_channel
from virtfleet.v1 import vms_pb2, vms_pb2_grpc

NICS = 4
BATCH = 20


@contextmanager
def manager_process(dsn: str, root: Path, env: dict[str, str] | None = None):
    sock = root / "manager.sock"
    log = open(root / "manager.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "manager.main", "--dsn", dsn, "--listen", str(sock),
                             "--pki-dir", str(root / "pki"), "--log-level", "WARNING"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2], env=env)
    channel = open_channel(f"unix://{sock}")
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield proc, vms_pb2_grpc.VmServiceStub(channel)
    finally:
        channel.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def _consistent(dsn: str) -> tuple[int, int, int]:
    """(VMs, vNICs, leases), asserting every VM is whole and every lease belongs to a vNIC."""
    with psycopg.connect(dsn) as conn:
        per_vm = conn.execute("SELECT count(n.id) FROM vms v LEFT JOIN vnics n ON n.vm_id = v.id "
                              "GROUP BY v.id").fetchall()
        assert all(c == NICS for (c,) in per_vm), "a VM without all its vNICs"
        vnics = conn.execute("SELECT count(*) FROM vnics").fetchone()[0]
        leases = conn.execute("SELECT count(*) FROM mac_leases").fetchone()[0]
        orphans = conn.execute(
            """SELECT count(*) FROM mac_leases l
                WHERE NOT EXISTS (SELECT 1 FROM vnics n
                                   WHERE ('x' || lpad(replace(n.mac::text, ':', ''), 16, '0'))::bit(64)::bigint = l.mac)"""
        ).fetchone()[0]
        assert orphans == 0, "a leased MAC that no vNIC holds"
    return len(per_vm), vnics, leases


@pytest.mark.parametrize("kill_after_batches", [1, 3, 6])
def test_sigkill_during_bulk_provisioning_leaves_whole_vms_and_no_leaked_mac(empty_db, kill_after_batches):
    with tempfile.TemporaryDirectory(prefix="vft-kill-") as d:
        root = Path(d)
        with manager_process(empty_db, root) as (proc, vms):
            vms.CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", nics=[
                parse_nic(f"nic{i}=ovirtmgmt,pci=0000:00:{3 + i:02x}.0") for i in range(NICS)]))
            stream = vms.CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
                name="bulk", count=BATCH * 50, template="t1", batch_size=BATCH))
            seen = 0
            for progress in stream:
                seen += 1
                if seen == kill_after_batches:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            proc.wait()
        made, vnics, leases = _consistent(empty_db)
        assert made >= kill_after_batches * BATCH and made < BATCH * 50
        assert made % BATCH == 0 and vnics == made * NICS and leases == vnics
        with manager_process(empty_db, root) as (_, vms):
            listed = vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest()).vms
            assert len(listed) == made
            assert all(len(v.nics) == NICS for v in listed)
            more = list(vms.CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
                name="again", count=BATCH, template="t1", batch_size=BATCH)))
            assert more[-1].created == BATCH
        assert _consistent(empty_db) == (made + BATCH, (made + BATCH) * NICS, (made + BATCH) * NICS)
