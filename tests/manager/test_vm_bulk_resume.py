"""A bulk `vm create --count` cut off by a killed manager: the CLI says what was made and how to continue.

The manager process is real and is SIGKILLed by a failpoint before its fourth batch;
the CLI is the installed `virtfleet` command. Its message names the VMs made (whole
batches) and the command that continues; that command, run against a new manager on
the same database, completes the run with every VM whole.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import pytest

from manager.cli.vms import resume_hint
from virtfleet import failpoints
from virtfleet.v1 import vms_pb2

from .test_vms_sigkill import _consistent, manager_process
from .vmhelpers import api, create_vm, nics

NICS = 4
BATCH = 20
COUNT = 200


def _virtfleet(sock: Path, *args: str) -> subprocess.CompletedProcess:
    cli = str(Path(sys.executable).with_name("virtfleet"))
    return subprocess.run([cli, "--manager", str(sock), *args], capture_output=True, text=True, timeout=600)


def test_cli_says_how_many_vms_a_killed_manager_made_and_how_to_resume(empty_db):
    with tempfile.TemporaryDirectory(prefix="vft-resume-") as d:
        root = Path(d)
        with manager_process(empty_db, root, failpoints.arm(dict(os.environ), "vm_bulk_batch_3")) as (proc, vms):
            vms.CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", nics=nics(
                *(f"nic{i}=ovirtmgmt,pci=0000:00:{3 + i:02x}.0" for i in range(NICS)))))
            cut = _virtfleet(root / "manager.sock", "vm", "create", "bulk", "--template", "t1", "--count",
                             str(COUNT), "--batch-size", str(BATCH))
            proc.wait()
        assert cut.returncode == 1
        made, _, _ = _consistent(empty_db)
        assert made == 3 * BATCH
        assert f"{made} of {COUNT} VMs were created (bulk-1 … bulk-{made}, each complete)" in cut.stderr
        assert "committed whole" in cut.stderr
        again = next(line.strip() for line in cut.stderr.splitlines() if line.strip().endswith("--resume"))
        assert shlex.split(again)[1:] == ["--manager", str(root / "manager.sock"), "vm", "create", "bulk",
                                          "--template", "t1", "--count", str(COUNT), "--batch-size", str(BATCH),
                                          "--resume"]
        with manager_process(empty_db, root):
            done = _virtfleet(root / "manager.sock", *shlex.split(again)[3:])
        assert done.returncode == 0, done.stderr
        assert f"created {COUNT} VMs bulk-1 … bulk-{COUNT}" in done.stdout
        assert _consistent(empty_db) == (COUNT, COUNT * NICS, COUNT * NICS)


def test_resume_hint_names_what_exists_and_the_command():
    last = vms_pb2.CreateVirtualMachinesProgress(total=50, created=20)
    text = resume_hint(["virtfleet", "vm", "create", "web", "--template", "t", "--count", "50"], "web", 50, last,
                       False)
    assert "20 of 50 VMs were created (web-1 … web-20, each complete)" in text
    assert text.splitlines()[1].strip() == "virtfleet vm create web --template t --count 50 --resume"
    assert "no VM of the 50" in resume_hint(["virtfleet"], "web", 50, vms_pb2.CreateVirtualMachinesProgress(), False)


def test_resume_keeps_only_vms_of_the_same_source(manager):
    api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", nics=nics("a=ovirtmgmt")))
    create_vm(manager, "web-2", "a=ovirtmgmt")
    with pytest.raises(grpc.RpcError) as err:
        list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
            name="web", count=3, template="t1", resume=True)))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "web-2" in err.value.details()
    assert "made directly" in err.value.details()
    api(manager).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="web-2"))
    first = list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="web", count=2, template="t1")))
    assert first[-1].created == 2
    more = list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="web", count=3, template="t1", resume=True)))
    assert (more[0].created, more[-1].created, list(more[-1].vms)) == (2, 3, ["web-3"])
