"""End to end on real components: lab of 2 hosts → enroll → ovirtmgmt → kernel state == stored state.

Runs the `virtfleet` command as an admin would. The lab gets its own state
directory and namespace prefix so it never meets a demo lab on the same machine.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from manager.lab import namespaces
from tests.fixtures.lab import gone, in_ns, ip_json, lab_pids, running_lab, vf, vfj

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root for network namespaces")


def wait_no_tentative(ns: str, timeout_s: float = 10.0) -> None:
    """IPv6 duplicate address detection flips flags for ~2 s; compare only a settled host."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(a.get("tentative") for l in ip_json(ns, "addr") for a in l.get("addr_info", [])):
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def lab():
    with running_lab("--hosts", "2") as lab:
        lab["status"] = vfj(lab, "lab", "status")
        yield lab

def test_lab_status_lists_hosts_for_scripts(lab):
    st = lab["status"]
    assert st["up"] is True
    assert st["manager"]["address"].startswith("unix://")
    assert [h["name"] for h in st["hosts"]] == ["host1", "host2"]
    for h in st["hosts"]:
        assert h["netns"] == lab["prefix"] + h["name"]
        assert Path(h["agent_socket"]).is_socket()
        assert h["agent_alive"] and h["agent_pid"] > 0
        assert "192.0.2.0/24" and h["address"].startswith("192.0.2.")


def test_the_labs_remote_fleet_api_answers_its_admin_certificate_and_refuses_by_role(lab, tmp_path):
    st = lab["status"]
    endpoint, certs = st["fleet_endpoint"], st["admin_cert_dir"]
    assert endpoint.startswith("127.0.0.1:")
    remote = ("--manager", endpoint, "--cert-dir", certs)
    hosts = json.loads(vf(lab, *remote, "host", "list", "-o", "json").stdout)
    assert sorted(h["name"] for h in hosts) == ["host1", "host2"]
    vf(lab, *remote, "admin", "add", "watcher", "--role", "auditor", "--out", str(tmp_path / "watcher"))
    listed = {a["name"]: a["role"] for a in json.loads(vf(lab, "admin", "list", "-o", "json").stdout)}
    assert listed == {"root": "admin", "watcher": "auditor"}
    as_auditor = ("--manager", endpoint, "--cert-dir", str(tmp_path / "watcher"))
    assert vf(lab, *as_auditor, "host", "list").returncode == 0
    refused = vf(lab, *as_auditor, "admin", "revoke", "root", check=False)
    assert refused.returncode == 1
    assert "PERMISSION_DENIED: needs role admin; admin watcher has auditor" in refused.stderr
    vf(lab, "admin", "revoke", "watcher")
    gone_now = vf(lab, *as_auditor, "host", "list", check=False)
    assert gone_now.returncode == 1 and "PERMISSION_DENIED" in gone_now.stderr


def test_enrolled_hosts_report_over_mutual_tls(lab):
    hosts = json.loads(vf(lab, "host", "list", "-o", "json").stdout)
    assert {h["name"]: h["status"] for h in hosts} == {"host1": "up", "host2": "up"}
    assert all(h["last_report_at"] for h in hosts)


def test_lab_up_twice_is_refused_and_changes_nothing(lab):
    again = vf(lab, "lab", "up", "--hosts", "2", check=False)
    assert again.returncode == 1
    assert "already up" in again.stderr and "lab down" in again.stderr
    assert json.loads(vf(lab, "lab", "status", "-o", "json").stdout) == lab["status"]


def test_bad_nic_fails_and_leaves_the_host_as_it_was(lab):
    ns = lab["prefix"] + "host1"
    before = ip_json(ns, "addr")
    r = vf(lab, "host", "setup-management", "host1", "--nic", "eth7", check=False)
    assert r.returncode == 1
    assert "INVALID_ARGUMENT" in r.stderr and "nic" in r.stderr
    assert ip_json(ns, "addr") == before


def test_unknown_host_is_not_found(lab):
    r = vf(lab, "host", "show", "nosuchhost", check=False)
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr


def _kernel_view(ns: str) -> dict[str, dict]:
    """What the test reads itself: per link, MAC, MTU, master and IPv4 addresses."""
    view = {}
    for link in ip_json(ns, "addr"):
        view[link["ifname"]] = {
            "mac": link.get("address"), "mtu": link["mtu"], "master": link.get("master", ""),
            "inet": sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a["family"] == "inet"),
        }
    return view


def _stored_view(report: dict) -> dict[str, dict]:
    view = {}
    for link in report["state"]["links"]:
        view[link["name"]] = {
            "mac": link.get("mac") or None, "mtu": link["mtu"], "master": link.get("master", ""),
            "inet": sorted(f"{a['address']}/{a['prefixlen']}" for a in link.get("addresses", [])
                           if a["family"] == "inet"),
        }
    return view


def test_ovirtmgmt_on_each_host_matches_what_the_manager_stored(lab):
    for i, name in enumerate(["host1", "host2"], start=1):
        ns = lab["prefix"] + name
        eth0_mac = ip_json(ns, "link", "show", "eth0")[0]["address"]
        out = vf(lab, "host", "setup-management", name)
        assert "ovirtmgmt created" in out.stdout
        again = vf(lab, "host", "setup-management", name)
        assert "already in place" in again.stdout

        kernel = _kernel_view(ns)
        assert kernel["ovirtmgmt"]["inet"] == [f"192.0.2.1{i}/24"]
        assert kernel["ovirtmgmt"]["mac"] == eth0_mac
        assert kernel["eth0"]["inet"] == [] and kernel["eth0"]["master"] == "ovirtmgmt"
        ports = {p["ifname"]: p.get("master") for p in json.loads(in_ns(ns, "bridge", "-j", "link"))}
        assert ports == {"eth0": "ovirtmgmt"}

        stored = json.loads(vf(lab, "host", "report", name, "--cached", "-o", "json").stdout)
        assert _stored_view(stored) == kernel


def _normalise_ip_text(text: str) -> str:
    text = re.sub(r"valid_lft \S+ preferred_lft \S+", "valid_lft L preferred_lft L", text)
    return text.rstrip("\n")


def test_host_report_prints_what_ip_addr_show_prints_on_the_host(lab):
    vf(lab, "host", "setup-management", "host2")
    ns = lab["prefix"] + "host2"
    wait_no_tentative(ns)
    report = vf(lab, "host", "report", "host2").stdout
    live_ip = in_ns(ns, "ip", "addr", "show")
    ip_part = report.split("# ip addr show\n", 1)[1].split("[host2 ~]# brctl show\n", 1)[0]
    assert _normalise_ip_text(ip_part) == _normalise_ip_text(live_ip)
    brctl_part = report.split("# brctl show\n", 1)[1]
    assert brctl_part.startswith("bridge name\tbridge id\t\tSTP enabled\tinterfaces\n")
    assert re.search(r"^ovirtmgmt\t\t8000\.[0-9a-f]{12}\tno\t\teth0$", brctl_part, re.M)


def netns_inodes() -> dict[str, int]:
    """Every named network namespace on the machine, with its identity."""
    return {n: namespaces.inode(n) for n in os.listdir("/run/netns")} if os.path.isdir("/run/netns") else {}


def test_lab_down_takes_its_lab_from_lab_json_and_leaves_another_lab_running():
    """Two labs up at once; `lab down` told only one's state directory (no prefix anywhere) takes apart that
    lab — all of its processes have exited when it returns — and nothing of the other, nor a namespace
    named like its own that it never made."""
    with running_lab("--hosts", "1", "--no-libvirt", tag="vfo") as other:
        root = Path(tempfile.mkdtemp(prefix="vft-lab-"))
        root.chmod(0o755)
        lab = {"dir": root / "lab", "prefix": f"vft{uuid.uuid4().hex[:4]}-"}
        stranger = lab["prefix"] + "host7"
        try:
            assert vf(lab, "lab", "up", "--hosts", "1", "--no-libvirt", check=False).returncode == 0
            made = vfj(lab, "lab", "status")["namespaces"]
            assert sorted(made) == [lab["prefix"] + "host1", lab["prefix"] + "switch"]
            pids = lab_pids(lab)
            assert set(pids) == {"supervisor", "manager", "agent/host1", "postgres"}
            other_pids, other_ns = lab_pids(other), {n: i for n, i in netns_inodes().items() if
                                                    n.startswith(other["prefix"])}
            subprocess.run(["ip", "netns", "add", stranger], check=True)

            wrong = vf(lab, "lab", "down", "--prefix", other["prefix"], check=False)
            assert wrong.returncode == 1 and repr(lab["prefix"]) in wrong.stderr
            assert lab_pids(lab) == pids

            down = vf(lab, "lab", "down", say_prefix=False)
            assert "removed 2 network namespaces" in down.stdout
            assert [role for role, pid in pids.items() if not gone(pid)] == []
            left = netns_inodes()
            assert not set(made) & set(left) and stranger in left
            assert not lab["dir"].exists()

            assert lab_pids(other) == other_pids and not any(gone(p) for p in other_pids.values())
            assert {n: i for n, i in left.items() if n.startswith(other["prefix"])} == other_ns
            assert vfj(other, "lab", "status")["up"] is True
            assert [(h["name"], h["status"]) for h in vfj(other, "host", "list")] == [("host1", "up")]
            assert "nothing was up" in vf(lab, "lab", "down", say_prefix=False).stdout
        finally:
            vf(lab, "lab", "down", check=False)
            subprocess.run(["ip", "netns", "del", stranger], check=False, capture_output=True)
            subprocess.run(["rm", "-rf", str(root)], check=False)


def test_lab_down_without_a_lab_json_touches_nothing(tmp_path):
    """The directory may be anyone's: no lab.json, no lab."""
    (tmp_path / "keep.txt").write_text("mine")
    done = vf({"dir": tmp_path, "prefix": "vft-none-"}, "lab", "down")
    assert "nothing was up" in done.stdout
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_a_namespace_is_removed_only_if_it_is_the_one_made():
    """Named like a recorded one but another namespace (removed and made again by someone else): left alone."""
    name, elsewhere = (f"vft{uuid.uuid4().hex[:4]}-{n}" for n in ("host1", "other"))
    made_elsewhere = namespaces.add(elsewhere)
    made = namespaces.add(name)
    try:
        assert namespaces.remove(name, made=made_elsewhere) is False
        assert namespaces.inode(name) == made
        assert namespaces.remove(name, made=made) is True
        assert namespaces.inode(name) is None
    finally:
        for n in (name, elsewhere):
            subprocess.run(["ip", "netns", "del", n], check=False, capture_output=True)


def test_lab_database_admits_root_and_postgres_only(lab):
    """The lab's PostgreSQL: a private socket directory and peer authentication with an ident map."""
    dsn = vfj(lab, "lab", "status")["database"]["dsn"]
    sock_dir = Path(dict(p.split("=", 1) for p in dsn.split())["host"])
    st = sock_dir.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o700, pwd.getpwnam("postgres").pw_uid)
    assert psql_as("root", dsn).returncode == 0
    assert psql_as("postgres", dsn).returncode == 0
    refused = psql_as("nobody", dsn)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
    as_other_role = psql_as("root", dsn.replace("user=postgres", "user=nobody"))
    assert as_other_role.returncode != 0 and "authentication failed" in as_other_role.stderr, as_other_role.stderr


def psql_as(os_user: str, dsn: str) -> subprocess.CompletedProcess:
    from manager.lab.postgres import server_bindir

    return subprocess.run(["runuser", "-u", os_user, "--", str(server_bindir() / "psql"), dsn, "-Atc", "SELECT 1"],
                          capture_output=True, text=True, timeout=60)
