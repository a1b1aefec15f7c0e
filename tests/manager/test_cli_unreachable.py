"""The CLI says which side is unreachable: the manager, or something the manager could not reach.

Decided by where the status came from (the manager's statuses carry a
google.rpc.Status), never by the words in it: an agent's "failed to connect"
relayed by the manager is the agent's, not the manager's.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.agent_process import enrolled_agent
from tests.fixtures.netns import plug_nics

CLI = str(Path(sys.executable).with_name("virtfleet"))


def _cli(target: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--manager", target, *args], capture_output=True, text=True, timeout=120)


def test_an_agent_that_is_down_is_named_and_the_manager_is_not_blamed(manager, netns_factory):
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 1)
    with enrolled_agent(manager, ns.name) as proc:
        served = _cli(manager.target, "host", "setup-management", "host1", "--plan")
        assert served.returncode == 0, served.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        done = _cli(manager.target, "host", "setup-management", "host1", "--plan")
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
