"""Two lab hosts' macvtaps with the same ifindex: each host's QEMU gets its own host's macvtap.

Lab hosts share the machine's kernel and its one devtmpfs, while ifindexes are per network namespace:
identical hosts make macvtaps with identical ifindexes, and libvirt opens a macvtap as /dev/tap<ifindex>.
Each lab libvirtd has a private /dev where the tapnodes watcher makes its own namespace's nodes
(manager/lab/libvirtd.py, manager/lab/tapnodes.py). Two network namespaces built the same way, each
with its libvirtd started as `lab up` starts it, each running a diskless VM with a macvtap (bridge mode)
vNIC on its eth0: the test checks that the ifindexes collide, then that each QEMU holds the character
device of its own namespace's macvtap, and that the node goes with the link.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network and mount namespaces")
libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.lab import libvirtd, namespaces, tapnodes  # noqa: E402

if not libvirtd.available():
    pytest.skip("libvirtd or qemu-system-x86_64 is not installed", allow_module_level=True)

DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os>
<devices><interface type='direct'><source dev='eth0' mode='bridge'/><model type='virtio'/><rom enabled='no'/>
</interface></devices></domain>"""
WAIT_S = 30   # a bound for the watcher to act, not an assertion on time


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Host:
    def __init__(self, netns: str, paths: libvirtd.LibvirtdPaths) -> None:
        self.netns, self.paths, self.pid = netns, paths, None

    def read_sys(self, rel: str) -> str:
        """/sys as seen from the host's namespace (`ip netns exec` mounts the namespace's own)."""
        return sh("ip", "netns", "exec", self.netns, "cat", f"/sys/{rel}").strip()

    def macvtap_number(self, name: str) -> tuple[int, int]:
        ifindex = int(self.read_sys(f"class/net/{name}/ifindex"))
        return tapnodes.parse_dev(self.read_sys(f"class/net/{name}/macvtap/tap{ifindex}/dev"))

    def qemu_pid(self, vm: str) -> int:
        return int((self.paths.private("run") / "qemu" / f"{vm}.pid").read_text())

    def private_dev(self) -> Path:
        """libvirtd's /dev, seen through its root (in its mount namespace)."""
        return Path(f"/proc/{self.pid}/root/dev")


def char_devices_open(pid: int) -> set[int]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            st = os.stat(fd)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o020000:
            found.add(st.st_rdev)
    return found


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    made: list[Host] = []
    try:
        for i in (1, 2):
            netns = f"vft{uuid.uuid4().hex[:4]}-tap{i}"
            sh("ip", "netns", "add", netns)
            root = tmp_path_factory.mktemp(f"host{i}")
            root.chmod(0o755)
            host = Host(netns, libvirtd.LibvirtdPaths(root / "libvirt"))
            made.append(host)
            # the same links in the same order in both: the same ifindexes
            sh("ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "wire")
            sh("ip", "-n", netns, "link", "set", "wire", "up")
            sh("ip", "-n", netns, "link", "set", "eth0", "up")
            host.pid = libvirtd.start(netns, host.paths)
        yield made
    finally:
        for host in made:
            if host.pid:
                libvirtd.stop(host.netns, host.paths, host.pid)
            namespaces.remove(host.netns)


def test_each_hosts_qemu_holds_its_own_macvtap_when_the_ifindexes_collide(hosts):
    conns = [libvirt.open(h.paths.uri) for h in hosts]
    try:
        for i, conn in enumerate(conns):
            conn.createXML(DOMAIN.format(name=f"tapvm{i}"), libvirt.VIR_DOMAIN_START_PAUSED)
        ifindexes = [int(h.read_sys("class/net/macvtap0/ifindex")) for h in hosts]
        assert ifindexes[0] == ifindexes[1], "the hosts' macvtaps must collide for this test to mean anything"
        numbers = [h.macvtap_number("macvtap0") for h in hosts]
        assert numbers[0] != numbers[1]
        for i, (h, number) in enumerate(zip(hosts, numbers)):
            rdev = os.makedev(*number)
            node = os.stat(h.private_dev() / f"tap{ifindexes[i]}")
            assert node.st_rdev == rdev
            held = char_devices_open(h.qemu_pid(f"tapvm{i}"))
            assert rdev in held, f"host{i + 1}'s QEMU does not hold its own macvtap {number}"
            assert os.makedev(*numbers[1 - i]) not in held, f"host{i + 1}'s QEMU holds the other host's macvtap"

        # the node goes with the link (destroying the VM deletes its macvtap)
        conns[0].lookupByName("tapvm0").destroy()
        node = hosts[0].private_dev() / f"tap{ifindexes[0]}"
        deadline = time.monotonic() + WAIT_S
        while node.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not node.exists()
        assert (hosts[1].private_dev() / f"tap{ifindexes[1]}").exists()
    finally:
        for conn in conns:
            conn.close()


def test_nothing_is_left_when_the_libvirtds_stop(hosts):
    for h in hosts:
        libvirtd.stop(h.netns, h.paths, h.pid)
        h.pid = None
        assert namespaces.pids_in(h.netns) == []
        assert not h.paths.hostdev.exists()
    assert "virtfleet-dev" not in Path("/proc/self/mountinfo").read_text()
