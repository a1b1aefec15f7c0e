"""Audit against a real agent in a lab host: changes made behind its back become findings, fixing clears them.

The changes are made with `ip` inside the host's namespace, as an admin with a
shell on the host would; the manager learns of them only from the agent's
stream, so every check waits for it (without timing it).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from manager.lab import processes
from tests.fixtures.lab import eventually, ip_json, running_lab, vf

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces")


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--nics", "3") as lab:
        try:
            lab["ns"] = lab["prefix"] + "host1"
            vf(lab, "host", "setup-management", "host1")
            vf(lab, "network", "create", "vmnet")
            vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth1")
            assert eventually(lambda: not findings(lab, "network")), findings(lab, "network")
            yield lab
        finally:
            for pid in lab["extra_pids"]:
                processes.stop(pid)



def findings(lab, category: str = "") -> list[dict]:
    args = ["audit", "--host", "host1", "-o", "json"] + (["--category", category] if category else [])
    return json.loads(vf(lab, *args).stdout).get("findings", [])


def ip(lab, *args: str) -> None:
    subprocess.run(["ip", "-n", lab["ns"], *args], check=True, capture_output=True)


def finding_about(lab, category: str, obj: str) -> dict | None:
    return next((f for f in findings(lab, category) if f["object"] == obj), None)


def fix(lab, finding: dict) -> None:
    plan = vf(lab, "audit", "fix", finding["id"], "--plan")
    assert "plan" in plan.stdout and finding["object"] in plan.stdout
    done = vf(lab, "audit", "fix", finding["id"], "--yes")
    assert "applied on host1" in done.stdout, done.stdout + done.stderr


def links(lab) -> dict[str, dict]:
    return {l["ifname"]: l for l in ip_json(lab["ns"], "link")}


def test_mtu_changed_behind_the_agents_back_is_found_and_fixed(lab):
    ip(lab, "link", "set", "vmnet", "mtu", "1400")
    found = eventually(lambda: finding_about(lab, "network", "network vmnet: vmnet mtu"))
    assert found and (found["expected"], found["found"], found["fixable"]) == ("1500", "1400", True)
    fix(lab, found)
    assert links(lab)["vmnet"]["mtu"] == 1500
    assert eventually(lambda: not findings(lab, "network"))


def test_plan_first_changes_nothing(lab):
    ip(lab, "link", "set", "vmnet", "mtu", "1450")
    found = eventually(lambda: finding_about(lab, "network", "network vmnet: vmnet mtu"))
    assert found
    vf(lab, "audit", "fix", found["id"], "--plan")
    assert links(lab)["vmnet"]["mtu"] == 1450
    fix(lab, found)
    assert eventually(lambda: not findings(lab, "network"))


def test_port_moved_to_another_bridge_is_found_and_fixed(lab):
    ip(lab, "link", "set", "eth1", "nomaster")
    ip(lab, "link", "set", "eth1", "master", "ovirtmgmt")
    found = eventually(lambda: finding_about(lab, "network", "network vmnet: eth1 master"))
    assert found and (found["expected"], found["found"]) == ("vmnet", "ovirtmgmt")
    fix(lab, found)
    assert links(lab)["eth1"]["master"] == "vmnet"
    assert eventually(lambda: not findings(lab, "network"))


def test_bridge_removed_is_found_and_fixed(lab):
    ip(lab, "link", "del", "vmnet")
    found = eventually(lambda: finding_about(lab, "network", "network vmnet: bridge vmnet"))
    assert found and (found["severity"], found["found"]) == ("error", "missing")
    fix(lab, found)
    assert links(lab)["eth1"]["master"] == "vmnet"
    assert eventually(lambda: not findings(lab, "network"))


def test_an_unexpected_bridge_and_address_are_reported(lab):
    ip(lab, "link", "add", "br-stray", "type", "bridge")
    ip(lab, "addr", "add", "198.51.100.9/24", "dev", "eth2")
    try:
        assert eventually(lambda: {"bridge br-stray", "address 198.51.100.9/24 on eth2"}
                          <= {f["object"] for f in findings(lab, "unexpected")})
    finally:
        ip(lab, "link", "del", "br-stray")
        ip(lab, "addr", "del", "198.51.100.9/24", "dev", "eth2")
    assert eventually(lambda: not findings(lab, "unexpected"))


def test_a_mac_no_pool_allocated_is_foreign(lab):
    if not any(Path("db").glob("*mac_pool*.sql")):
        pytest.skip("MAC pools (db/002_mac_pools.sql) are not in this tree: nothing says which MACs are allocated")
    ip(lab, "tuntap", "add", "dev", "tap-hand", "mode", "tap")
    ip(lab, "link", "set", "tap-hand", "address", "52:54:00:de:ad:01")
    try:
        found = eventually(lambda: finding_about(lab, "mac-foreign", "MAC 52:54:00:de:ad:01 on tap-hand"))
        assert found and found["host"] == "host1"
    finally:
        ip(lab, "link", "del", "tap-hand")


def test_killed_agent_restarted_after_changes_converges(lab):
    """kill -9 of the agent: the lab's supervisor starts it again, as systemd would on a host."""
    def agent_pid() -> int | None:
        status = json.loads(vf(lab, "lab", "status", "-o", "json").stdout)
        return next(h["agent_pid"] for h in status["hosts"] if h["name"] == "host1")

    pid = agent_pid()
    os.kill(pid, signal.SIGKILL)
    assert eventually(lambda: not processes.alive(pid))
    ip(lab, "link", "add", "br-offline", "type", "bridge")
    ip(lab, "link", "set", "eth2", "mtu", "1300")
    try:
        assert eventually(lambda: agent_pid() not in (None, pid), timeout_s=40)

        def converged() -> bool:
            report = json.loads(vf(lab, "host", "report", "host1", "--cached", "-o", "json").stdout)
            held = {l["name"]: l for l in report["state"]["links"]}
            return "br-offline" in held and held["eth2"]["mtu"] == 1300

        assert eventually(converged, timeout_s=40)
        assert eventually(lambda: finding_about(lab, "unexpected", "bridge br-offline"))
        hosts = json.loads(vf(lab, "host", "list", "-o", "json").stdout)
        assert [(h["name"], h["reachable"]) for h in hosts] == [("host1", True)]
    finally:
        ip(lab, "link", "del", "br-offline")
        ip(lab, "link", "set", "eth2", "mtu", "1500")
