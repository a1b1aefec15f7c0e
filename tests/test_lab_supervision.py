"""The lab restarts a crashed agent or manager as systemd's Restart=on-failure restarts their units.

A real lab; crashes are real SIGKILLs; the restarted processes must serve the
same sockets and the manager must hear from the hosts again. The decisions
themselves (what is a failure, when a crash loop stops) are pure and tested first.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from manager.lab.restart_policy import Outcome, RestartPolicy, after_exit, describe_exit, is_failure
from tests.fixtures.lab import eventually, gone, lab_pids, running_lab, vf, vfj

# -- the policy --------------------------------------------------------------------------------------------

POLICY = RestartPolicy(delay_s=0.2, burst=5, interval_s=10.0)


@pytest.mark.parametrize("returncode, failure", [
    (0, False), (-signal.SIGTERM, False), (-signal.SIGINT, False), (-signal.SIGHUP, False),
    (-signal.SIGPIPE, False), (1, True), (2, True), (-signal.SIGKILL, True), (-signal.SIGSEGV, True),
    (-signal.SIGABRT, True),
])
def test_failure_is_what_systemd_calls_one(returncode, failure):
    assert is_failure(returncode) is failure


def test_a_clean_exit_is_left_down():
    assert after_exit(0, [100.0], 101.0, POLICY) is Outcome.STOPPED
    assert after_exit(-signal.SIGTERM, [100.0], 101.0, POLICY) is Outcome.STOPPED


def test_a_crash_is_restarted():
    assert after_exit(-signal.SIGKILL, [100.0], 101.0, POLICY) is Outcome.RESTART


def test_a_crash_loop_stops_at_the_start_limit():
    """Five starts within ten seconds are allowed; a fifth crash within them leaves the process failed."""
    starts = [100.0, 100.5, 101.0, 101.5, 102.0]
    assert after_exit(1, starts[:4], 101.6, POLICY) is Outcome.RESTART
    assert after_exit(1, starts, 102.1, POLICY) is Outcome.FAILED


def test_crashes_far_apart_are_always_restarted():
    starts = [0.0, 30.0, 60.0, 90.0, 120.0]
    assert after_exit(-signal.SIGKILL, starts, 125.0, POLICY) is Outcome.RESTART


def test_exits_are_described_for_lab_status():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(2) == "exit 2"


# -- a real lab ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root for network namespaces")
    with running_lab("--hosts", "3", "--no-libvirt", tag="vfs") as lab:
        yield lab


def host(lab, name: str) -> dict:
    return next(h for h in vfj(lab, "lab", "status")["hosts"] if h["name"] == name)


def reachable(lab) -> dict[str, bool]:
    return {h["name"]: h["status"] == "up" and h["reachable"] for h in vfj(lab, "host", "list")}


def test_a_killed_agent_is_restarted_on_its_socket_and_reports_again(lab):
    before = host(lab, "host1")
    os.kill(before["agent_pid"], signal.SIGKILL)
    after = eventually(lambda: (h := host(lab, "host1"))["agent_pid"] not in (None, before["agent_pid"]) and h)
    assert after, host(lab, "host1")
    assert (after["agent_status"], after["agent_restarts"], after["agent_last_exit"]) == \
        ("running", 1, "killed by SIGKILL")
    assert after["agent_socket"] == before["agent_socket"]
    assert eventually(lambda: Path(after["agent_socket"]).is_socket())
    assert eventually(lambda: reachable(lab)["host1"], timeout_s=40), vfj(lab, "host", "list")
    assert "RESTARTS" in vf(lab, "lab", "status").stdout


def test_a_killed_manager_is_restarted_and_hears_from_every_host(lab):
    pid = vfj(lab, "lab", "status")["manager"]["pid"]
    os.kill(pid, signal.SIGKILL)
    manager = eventually(lambda: (m := vfj(lab, "lab", "status")["manager"])["pid"] not in (None, pid) and m)
    assert manager and (manager["restarts"], manager["last_exit"]) == (1, "killed by SIGKILL")
    hosts = eventually(lambda: all(reachable(lab).values()) and reachable(lab), timeout_s=40)
    assert hosts == {"host1": True, "host2": True, "host3": True}


def test_an_agent_stopped_cleanly_is_left_down(lab):
    """SIGTERM is `systemctl stop`, or an admin's kill: on-failure does not restart it."""
    before = host(lab, "host2")
    os.kill(before["agent_pid"], signal.SIGTERM)
    after = eventually(lambda: (h := host(lab, "host2"))["agent_status"] != "running" and h)
    assert after and (after["agent_status"], after["agent_pid"], after["agent_restarts"]) == ("stopped", None, 0)
    assert after["agent_last_exit"] == "exit 0"


def test_an_agent_that_crashes_at_every_start_stops_at_the_start_limit(lab):
    """Its certificate gone, the agent exits 2 at once, each time: five starts, then `failed`."""
    pki = Path(host(lab, "host3")["agent_socket"]).parent / "pki"
    shutil.move(pki, pki.with_name("pki.away"))
    try:
        os.kill(host(lab, "host3")["agent_pid"], signal.SIGKILL)
        failed = eventually(lambda: (h := host(lab, "host3"))["agent_status"] == "failed" and h, timeout_s=60)
        assert failed, host(lab, "host3")
        assert (failed["agent_pid"], failed["agent_last_exit"]) == (None, "exit 2")
        # the fifth start within ten seconds is the last: five restarts, or four when the run killed above
        # had begun within those ten seconds
        assert failed["agent_restarts"] in (4, 5)
        assert "failed" in vf(lab, "lab", "status").stdout
    finally:
        shutil.move(pki.with_name("pki.away"), pki)


def test_lab_down_after_restarts_leaves_nothing(lab):
    pids = lab_pids(lab)
    made = vfj(lab, "lab", "status")["namespaces"]
    vf(lab, "lab", "down")
    assert [role for role, pid in pids.items() if not gone(pid)] == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert not set(made) & set(listed)
    assert not Path(lab["dir"]).exists()
