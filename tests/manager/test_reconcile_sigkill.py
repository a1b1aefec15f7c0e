"""A manager SIGKILLed between an agent's start of a VM and its record: the next manager adopts the guest.

Real processes: the manager (`python -m manager.main`) killed at failpoint
`vm.start.after_agent` — the guest runs on host1, the record says down with the dead
manager's claim on it — and a real agent (libvirt's test driver) in a namespace of its
own. The restarted manager follows host1, asks what it runs and records the VM up there
with the PCI addresses and devices the host reports, and says so in the audit trail.
Then the reverse: the guest destroyed on the host behind the manager's back is marked
down by the next audit run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.client import open_channel  # noqa: E402
from manager.pki import CertificateAuthority  # noqa: E402
from virtfleet import failpoints  # noqa: E402
from virtfleet.v1 import audit_pb2, audit_pb2_grpc, vms_pb2, vms_pb2_grpc  # noqa: E402

from .testdriver_hosts import TestDriverHost, no_network_filters, until  # noqa: E402
from .vmhelpers import nics  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def manager_process(dsn: str, root: Path, env: dict[str, str] | None = None):
    sock = root / "manager.sock"
    log = open(root / "manager.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "manager.main", "--dsn", dsn, "--listen", str(sock),
                             "--pki-dir", str(root / "pki"), "--log-level", "INFO"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    channel = open_channel(f"unix://{sock}")
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield proc, channel
    finally:
        channel.close()
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)
        log.close()


def row(dsn: str, query: str, *args):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, args).fetchone()


def vm_record(dsn: str) -> tuple:
    return row(dsn, """SELECT v.state, h.name, v.claim IS NOT NULL FROM vms v LEFT JOIN hosts h ON h.id = v.host_id
                        WHERE v.name = 'crash-a'""")


def vnics(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT name, pci_address::text, host_device FROM vnics ORDER BY position").fetchall()]


def event(dsn: str, action: str) -> tuple | None:
    return row(dsn, "SELECT object_name, message FROM events WHERE rpc = %s", action)


def test_a_manager_killed_before_recording_a_start_adopts_the_guest_when_restarted(empty_db, netns_factory):
    with tempfile.TemporaryDirectory(prefix="vft-rck-") as d:
        root = Path(d)
        ca = CertificateAuthority.load_or_create(root / "pki")   # the managers' CA (they load it from --pki-dir)
        (root / "h1").mkdir()
        host = TestDriverHost(ca, "host1", "192.0.2.11", root / "h1", netns_factory().name).start()
        try:
            with manager_process(empty_db, root, failpoints.arm(dict(os.environ),
                                                                "vm.start.after_agent")) as (proc, channel):
                host.enroll(empty_db)
                no_network_filters(empty_db)
                vms = vms_pb2_grpc.VmServiceStub(channel)
                vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name="crash-a", nics=nics(
                    "nic1=ovirtmgmt,pci=0000:00:05.0", "nic2=ovirtmgmt,pci=0000:00:03.0")), timeout=30)
                with pytest.raises(grpc.RpcError) as killed:
                    vms.StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="crash-a", host="host1"),
                                            timeout=60)
                assert killed.value.code() == grpc.StatusCode.UNAVAILABLE
                assert proc.wait(30) == -9
            assert "crash-a" in host.running()
            assert vm_record(empty_db) == ("down", None, True)   # the dead manager's claim is still on it

            with manager_process(empty_db, root) as (_, channel):
                until(lambda: vm_record(empty_db) == ("up", "host1", False), "the VM adopted on host1")
                assert [(n, pci) for n, pci, _ in vnics(empty_db)] == [("nic1", "0000:00:05.0"),
                                                                      ("nic2", "0000:00:03.0")]
                assert all(dev for _, _, dev in vnics(empty_db))   # the devices the host reported
                until(lambda: event(empty_db, "vm.adopted") is not None, "the adoption's event")
                assert "host1" in event(empty_db, "vm.adopted")[1]
                vm = vms_pb2_grpc.VmServiceStub(channel).GetVirtualMachine(
                    vms_pb2.GetVirtualMachineRequest(name="crash-a"), timeout=30)
                assert (vm.state, vm.host) == ("up", "host1")

                # the reverse: destroyed on the host behind the manager's back, found by the audit
                host.destroy("crash-a")
                audit_pb2_grpc.AuditServiceStub(channel).RunAudit(audit_pb2.RunAuditRequest(), timeout=60)
                assert vm_record(empty_db) == ("down", None, False)
                assert all(dev is None for _, _, dev in vnics(empty_db))
                until(lambda: event(empty_db, "vm.marked_down") is not None, "the marking's event")
        finally:
            host.close()
