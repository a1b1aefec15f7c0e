"""A host added with NIC labels gets its labelled networks once it is up: on a lab host, as an admin does it.

The admin replaces a lab host: `host remove`, then `host add … --nic-label eth1=lab --nic-label eth2=far`
while networks carry those labels, `virtfleet-agent enroll` in the host's namespace with the token, and
its agent restarted (a SIGKILL: the lab's supervisor starts it again, as systemd would) so it serves its
new certificate. Its first report brings both bridges, through one setupNetworks, with nobody rerunning
a label command. (Two networks on one NIC need 802.1Q, which tests/manager/test_labels_follow_hosts.py
tries where the kernel has it.)
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from manager.lab import processes
from tests.fixtures.lab import eventually, ip_json, running_lab, vf, vfj

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces")


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--nics", "3", "--no-libvirt", tag="vfl") as lab:
        yield lab


def bridges(ns: str) -> dict[str, list[str]]:
    found = {b["ifname"]: [] for b in ip_json(ns, "link", "show", "type", "bridge")}
    for link in ip_json(ns, "link"):
        if link.get("master") in found:
            found[link["master"]].append(link["ifname"])
    return {b: sorted(p) for b, p in found.items()}


def test_a_host_added_with_nic_labels_gets_the_labelled_networks_once_up(lab):
    [lab_host] = vfj(lab, "lab", "status")["hosts"]
    ns, old_pid = lab_host["netns"], lab_host["agent_pid"]
    for net, label in (("green", "lab"), ("blue", "far")):
        vf(lab, "network", "create", net)
        assert vfj(lab, "network", "label", net, label) == {"hosts": []}

    vf(lab, "host", "remove", "host1")
    added = vfj(lab, "host", "add", "host1", "--address", lab_host["address"],
                "--endpoint", f"unix://{lab_host['agent_socket']}", "--nic-label", "eth1=lab",
                "--nic-label", "eth2=far")
    assert added["host"]["nic_labels"] == [{"nic": "eth1", "label": "lab"}, {"nic": "eth2", "label": "far"}]
    lab_dir = Path(lab["dir"])
    enrolled = subprocess.run(processes.enroll_command(ns, f"unix://{lab_dir / 'enroll.sock'}", added["token"],
                                                       added["ca_fingerprint"], lab_dir / "hosts" / "host1" / "pki"),
                              capture_output=True, text=True, timeout=60)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "green" not in bridges(ns) and "blue" not in bridges(ns)

    os.kill(old_pid, signal.SIGKILL)   # restarted by the supervisor, with the new certificate

    def placed() -> bool:
        got = bridges(ns)
        return got.get("green") == ["eth1"] and got.get("blue") == ["eth2"]
    assert eventually(placed, timeout_s=60), bridges(ns)
    assert eventually(lambda: vfj(lab, "host", "show", "host1")["status"] == "up")
    networks = vfj(lab, "host", "networks", "host1")
    assert {(n["network"], n["nic"], n["in_sync"]) for n in networks["networks"]} >= {
        ("green", "eth1", True), ("blue", "eth2", True)}, networks
    events = [e["rpc"] for e in vfj(lab, "events", "--object", "host/host1")]
    assert "network.labels_applied" in events, events
