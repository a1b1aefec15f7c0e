"""Host networks end to end: the admin's commands → manager → agent → kernel, read back independently.

A lab host with four NICs; the test checks each change inside the host's
namespace with iproute2 and compares with what `virtfleet host networks` says.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.fixtures.lab import eventually, ip_json, running_lab, vf

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces")


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "1", "--nics", "4") as lab:
        lab["ns"] = lab["prefix"] + "host1"
        yield lab

def links(ns: str) -> dict[str, dict]:
    """What an admin configured on each link (IPv6 DAD flags and lifetimes change by themselves)."""
    out = {}
    for link in ip_json(ns, "addr"):
        link["addr_info"] = sorted(({k: a[k] for k in ("family", "local", "prefixlen") if k in a}
                                    for a in link.get("addr_info", [])), key=lambda a: (a["family"], a["local"]))
        link.pop("operstate", None)
        out[link["ifname"]] = link
    return out


def sync_view(lab) -> dict[str, dict]:
    view = json.loads(vf(lab, "host", "networks", "host1", "-o", "json").stdout)
    return {n["network"]: n for n in view["networks"]}




def test_management_network_is_recorded_as_desired_and_in_sync(lab):
    vf(lab, "host", "setup-management", "host1")
    view = eventually(lambda: (v := sync_view(lab)) and v.get("ovirtmgmt", {}).get("in_sync") and v)
    mgmt = view["ovirtmgmt"]
    assert (mgmt["nic"], mgmt["desired"]["ipv4"]["method"], mgmt["desired"]["ipv4"]["address"]) == \
        ("eth0", "static", "192.0.2.11")


def test_plan_lists_kernel_changes_and_changes_nothing(lab):
    vf(lab, "network", "create", "vmnet")
    before = links(lab["ns"])
    r = vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth1", "--plan")
    assert "nothing done" in r.stdout and "vmnet" in r.stdout
    assert links(lab["ns"]) == before
    assert set(sync_view(lab)) == {"ovirtmgmt"}


def test_bridged_and_bridgeless_networks_are_made_and_in_sync(lab):
    vf(lab, "network", "create", "storage", "--no-vm-network", "--mtu", "9000")
    vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth1",
       "--attach", "storage=eth2:static=198.51.100.5/255.255.255.0")
    now = links(lab["ns"])
    assert now["vmnet"]["link_type"] == "ether" and now["eth1"]["master"] == "vmnet"
    assert [f"{a['local']}/{a['prefixlen']}" for a in now["eth2"]["addr_info"] if a["family"] == "inet"] == \
        ["198.51.100.5/24"]
    assert now["eth2"]["mtu"] == 9000 and "master" not in now["eth2"]
    view = eventually(lambda: (v := sync_view(lab)) and all(n["in_sync"] for n in v.values()) and v)
    assert set(view) == {"ovirtmgmt", "vmnet", "storage"}, view


def test_change_behind_the_agents_back_shows_exactly_what_differs(lab):
    subprocess.run(["ip", "-n", lab["ns"], "link", "set", "eth1", "nomaster"], check=True)
    view = eventually(lambda: (v := sync_view(lab)) and not v["vmnet"]["in_sync"] and v)
    assert view["vmnet"]["differences"] == [{"field": "eth1 master", "expected": "vmnet", "found": "none"}]
    assert view["storage"]["in_sync"]
    vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth1")
    assert eventually(lambda: sync_view(lab)["vmnet"]["in_sync"])


def test_confirmed_change_outlives_its_connectivity_timeout(lab):
    vf(lab, "network", "create", "display")
    vf(lab, "host", "setup-networks", "host1", "--attach", "display=eth3", "--connectivity-timeout", "2")
    time.sleep(3)  # past the timeout: an unconfirmed change would be rolled back by now
    assert links(lab["ns"])["eth3"]["master"] == "display"


def test_detach_removes_what_attach_made(lab):
    vf(lab, "host", "setup-networks", "host1", "--detach", "vmnet", "--detach", "display")
    now = links(lab["ns"])
    assert "vmnet" not in now and "display" not in now
    assert "master" not in now["eth1"] and "master" not in now["eth3"]
    assert set(sync_view(lab)) == {"ovirtmgmt", "storage"}


def test_refused_change_names_the_problem_and_changes_nothing(lab):
    before = links(lab["ns"])
    r = vf(lab, "host", "setup-networks", "host1", "--attach", "vmnet=eth9", check=False)
    assert r.returncode == 1 and "eth9" in r.stderr
    assert links(lab["ns"]) == before
