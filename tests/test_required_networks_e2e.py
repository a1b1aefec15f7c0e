"""Required networks and labels end to end: two lab hosts (namespaces, each with its agent and libvirtd),
the admin's commands, and the kernel changed behind the agents' backs.

- A required network whose bridge is deleted inside the host's namespace makes the host
  non-operational (the manager learns it from the agent's delta stream); `vm start` then avoids
  it, `--host` on it is refused with the reason; re-applying the network makes it up again.
  Both transitions are events.
- Labels: the same label on each host's eth1 and on two networks puts both bridges on both
  hosts; removing a label detaches what it put there.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.fixtures.lab import eventually, in_ns, ip_json, running_lab, vf, vfj

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces")


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "2", "--nics", "3", "--libvirt", tag="vfr") as lab:
        lab["ns"] = {h: lab["prefix"] + h for h in ("host1", "host2")}
        try:
            yield lab
        finally:
            for vm in json.loads(vf(lab, "vm", "list", "-o", "json", check=False).stdout or "[]"):
                if vm.get("state") == "up":
                    vf(lab, "vm", "stop", vm["name"], "--force", check=False)


def host(lab, name: str) -> dict:
    return vfj(lab, "host", "show", name)


def events_of(lab, name: str) -> list[str]:
    return [e["rpc"] for e in vfj(lab, "events", "--object", f"host/{name}")]


def bridges(ns: str) -> dict[str, list[str]]:
    """Each bridge in the namespace with its ports."""
    found = {b["ifname"]: [] for b in ip_json(ns, "link", "show", "type", "bridge")}
    for link in ip_json(ns, "link"):
        if link.get("master") in found:
            found[link["master"]].append(link["ifname"])
    return {b: sorted(p) for b, p in found.items()}


def test_a_host_lacking_a_required_network_is_non_operational_until_it_is_back(lab):
    vf(lab, "network", "create", "vmnet")
    for h in ("host1", "host2"):
        vf(lab, "host", "setup-networks", h, "--attach", "vmnet=eth2")
    shown = vfj(lab, "network", "attach-cluster", "vmnet", "Default", "--required")
    assert {"cluster": "Default", "required": True, "migration": False} in shown["clusters"]
    assert eventually(lambda: host(lab, "host1")["status"] == "up")

    in_ns(lab["ns"]["host1"], "ip", "link", "del", "vmnet")
    down = eventually(lambda: (h := host(lab, "host1"))["status"] == "non-operational" and h)
    assert down and "required network vmnet is missing" in down["status_reason"], down
    listed = {h["name"]: h for h in vfj(lab, "host", "list")}
    assert listed["host1"]["reachable"] and listed["host2"]["status"] == "up"
    assert eventually(lambda: "host.non_operational" in events_of(lab, "host1"))

    vf(lab, "vm", "create", "placed")
    assert vfj(lab, "vm", "start", "placed")["host"] == "host2"
    vf(lab, "vm", "create", "pinned")
    refused = vf(lab, "vm", "start", "pinned", "--host", "host1", check=False)
    assert refused.returncode != 0 and "FAILED_PRECONDITION" in refused.stderr + refused.stdout
    assert "non-operational" in refused.stderr and "vmnet" in refused.stderr, refused.stderr

    vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth2")
    assert eventually(lambda: host(lab, "host1")["status"] == "up"), host(lab, "host1")
    assert not host(lab, "host1").get("status_reason")
    assert eventually(lambda: "host.operational" in events_of(lab, "host1"))
    assert vfj(lab, "vm", "start", "pinned", "--host", "host1")["host"] == "host1"


def vlan_support(netns) -> bool:
    """Whether this kernel makes 802.1Q devices (module 8021q): two networks on one NIC need it."""
    netns.ip("link", "add", "probe0", "type", "veth", "peer", "name", "probe1")
    try:
        netns.ip("link", "add", "link", "probe0", "name", "probe0.7", "type", "vlan", "id", "7")
    except Exception:
        return False
    return True


def test_a_label_places_its_network_and_a_host_that_refuses_is_left_as_it_was(lab):
    for h in ("host1", "host2"):
        vf(lab, "host", "nic-label", h, "eth1", "lab-b")
    vf(lab, "network", "create", "green")
    outcome = vfj(lab, "network", "label", "green", "lab-b")
    assert sorted((h["host"], tuple(h["attached"]), h["applied"]) for h in outcome["hosts"]) == \
        [("host1", ("green=eth1",), True), ("host2", ("green=eth1",), True)]
    for h in ("host1", "host2"):
        assert bridges(lab["ns"][h]).get("green") == ["eth1"]

    # A second untagged network cannot share eth1: each host refuses, and stays as it was.
    vf(lab, "network", "create", "yellow")
    before = {h: bridges(lab["ns"][h]) for h in ("host1", "host2")}
    refused = vf(lab, "network", "label", "yellow", "lab-b", "-o", "json", check=False)
    assert refused.returncode == 1, refused.stderr
    outcome = json.loads(refused.stdout)
    assert [(h["host"], h["applied"], bool(h["error"])) for h in outcome["hosts"]] == \
        [("host1", False, True), ("host2", False, True)]
    assert {h: bridges(lab["ns"][h]) for h in ("host1", "host2")} == before
    assert vfj(lab, "network", "show", "yellow")["labels"] == ["lab-b"]   # the label stays recorded
    removed = vfj(lab, "network", "label", "yellow", "lab-b", "--remove")
    assert all(h["applied"] and not h["detached"] for h in removed["hosts"])

    for h in ("host1", "host2"):
        outcome = vfj(lab, "host", "nic-label", h, "eth1", "lab-b", "--remove")
        assert outcome["hosts"][0]["detached"] == ["green"]
        assert "green" not in bridges(lab["ns"][h])


def test_labels_put_every_labelled_network_on_every_labelled_nic(lab, netns):
    if not vlan_support(netns):
        pytest.skip("this kernel makes no 802.1Q VLAN devices (module 8021q): two networks cannot share eth1")
    vf(lab, "network", "create", "red", "--vlan", "101")
    vf(lab, "network", "create", "blue", "--vlan", "102")
    for net in ("red", "blue"):
        assert vfj(lab, "network", "label", net, "lab-a") == {"hosts": []}   # no NIC carries it yet
    for h in ("host1", "host2"):
        outcome = vfj(lab, "host", "nic-label", h, "eth1", "lab-a")
        assert outcome["hosts"] == [{"host": h, "attached": ["blue=eth1", "red=eth1"], "detached": [], "applied": True,
                                     "error": "", "skipped": []}], outcome
    for h in ("host1", "host2"):
        got = bridges(lab["ns"][h])
        assert (got.get("red"), got.get("blue")) == (["eth1.101"], ["eth1.102"]), got
    shown = vfj(lab, "network", "show", "red")
    assert shown["labels"] == ["lab-a"] and {"cluster": "Default", "required": False, "migration": False} in shown["clusters"]
    assert vfj(lab, "host", "show", "host1")["nic_labels"] == [{"nic": "eth1", "label": "lab-a"}]

    outcome = vfj(lab, "network", "label", "red", "lab-a", "--remove")
    assert sorted((h["host"], tuple(h["detached"])) for h in outcome["hosts"]) == [("host1", ("red",)),
                                                                                   ("host2", ("red",))]
    for h in ("host1", "host2"):
        got = bridges(lab["ns"][h])
        assert "red" not in got and got.get("blue") == ["eth1.102"], got

    outcome = vfj(lab, "host", "nic-label", "host2", "eth1", "lab-a", "--remove")
    assert outcome["hosts"][0]["detached"] == ["blue"]
    assert "blue" not in bridges(lab["ns"]["host2"]) and "blue" in bridges(lab["ns"]["host1"])


def test_a_bad_label_is_refused_naming_the_field_and_changes_nothing(lab):
    before = vfj(lab, "network", "show", "green")
    bad = vf(lab, "network", "label", "green", "not ok", check=False)
    assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr and "label" in bad.stderr, bad.stderr
    missing = vf(lab, "host", "nic-label", "host1", "eth9", "lab-a", check=False)
    assert missing.returncode != 0 and "eth9" in missing.stderr, missing.stderr
    assert vfj(lab, "network", "show", "green") == before
