"""The CLI says which side is unreachable: the manager, or something the manager could not reach.

Decided by where the status came from (the manager's statuses carry a
google.rpc.Status), never by the words in it: an agent's "failed to connect"
relayed by the manager is the agent's, not the manager's.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.agent_process import start_agent
from tests.fixtures.netns import plug_nics
from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import fleet_pb2

CLI = str(Path(sys.executable).with_name("virtfleet"))


def _cli(target: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--manager", target, *args], capture_output=True, text=True, timeout=120)


def test_an_agent_that_is_down_is_named_and_the_manager_is_not_blamed(manager, netns_factory):
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 1)
    root = Path(tempfile.mkdtemp(prefix="vft-agent-"))  # short: a unix socket path has 107 bytes
    sock = root / "agent.sock"
    key, csr = make_key_and_csr("host1")
    enrolled = manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(
        name="host1", address="192.0.2.11", csr_pem=csr, endpoint=f"unix://{sock}"))
    TlsMaterial(enrolled.ca_certificate_pem, enrolled.certificate_pem, key).save(root / "pki")
    proc = start_agent(ns.name, sock, root / "pki", root / "state")
    try:
        served = _cli(manager.target, "host", "setup-management", "host1", "--plan")
        assert served.returncode == 0, served.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)

        done = _cli(manager.target, "host", "setup-management", "host1", "--plan")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)
    print(done.stderr)
    assert done.returncode == 1
    assert "error: UNAVAILABLE: the agent of host host1 is unreachable" in done.stderr, done.stderr
    assert "cannot reach the manager" not in done.stderr


def test_a_manager_that_is_down_is_named_with_its_socket(tmp_path):
    sock = tmp_path / "manager.sock"   # nothing listens here
    done = _cli(str(sock), "host", "list")
    print(done.stderr)
    assert done.returncode == 1
    assert f"error: UNAVAILABLE: cannot reach the manager at {sock} (" in done.stderr, done.stderr
    assert "is it running?" in done.stderr
