"""A lab host's own libvirtd: private directories, socket in the lab, nothing outlives the host.

Starts manager.lab.libvirtd in a throwaway network namespace, as `lab up` does for
each host, runs a real QEMU guest and a NAT network (dnsmasq) there, then stops it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network and mount namespaces")

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.lab import libvirtd, namespaces  # noqa: E402

if not libvirtd.available():
    pytest.skip("libvirtd or qemu-system-x86_64 is not installed", allow_module_level=True)

DOMAIN = """<domain type='qemu'><name>lvd-test</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><features><acpi/></features>
<devices><interface type='network'><source network='lvd-nat'/><model type='virtio'/><rom enabled='no'/></interface>
</devices></domain>"""
NETWORK = """<network><name>lvd-nat</name><forward mode='nat'/><bridge name='lvdbr0'/>
<ip address='10.71.0.1' prefix='24'><dhcp><range start='10.71.0.10' end='10.71.0.20'/></dhcp></ip></network>"""


def programs_in(netns: str) -> list[str]:
    names = []
    for pid in namespaces.pids_in(netns):
        try:
            names.append(os.path.basename(os.readlink(f"/proc/{pid}/exe")))
        except OSError:
            pass
    return sorted(names)


def running(pid: int) -> bool:
    """Exists and is not a zombie (an exited dnsmasq waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def host(tmp_path):
    netns = f"vft{uuid.uuid4().hex[:4]}-lvd"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    tmp_path.chmod(0o755)
    try:
        yield netns, libvirtd.LibvirtdPaths(tmp_path / "libvirt")
    finally:
        namespaces.remove(netns)


def test_libvirtd_runs_in_the_hosts_namespace_with_private_dirs_and_a_lab_socket(host):
    netns, paths = host
    etc_before = sorted(os.listdir("/etc/libvirt"))
    pid = libvirtd.start(netns, paths)
    try:
        assert paths.socket.is_socket() and str(paths.socket).startswith(str(paths.root))
        watcher = os.path.basename(os.path.realpath(sys.executable))   # tapnodes, beside libvirtd
        assert programs_in(netns) == sorted(["libvirtd", watcher])
        # the same file (its path reads differently from another mount namespace or a chroot)
        assert os.path.samefile(f"/proc/{pid}/exe", "/usr/sbin/libvirtd")
        # its /etc/libvirt is the lab's; the machine's is untouched
        assert sorted(os.listdir("/etc/libvirt")) == etc_before
        mounts = Path(f"/proc/{pid}/mountinfo").read_text()
        ours = Path("/proc/self/mountinfo").read_text()
        for _, target in libvirtd.PRIVATE_DIRS:
            assert f" {target} " in mounts and f" {target} " not in ours
        # its /dev is a private tmpfs, with its own ptys; the machine's /dev only at hostdev, and only there
        dev = {line.split()[4]: line.split(" - ")[1].split()[0] for line in mounts.splitlines()}
        assert dev["/dev"] == "tmpfs" and dev["/dev/pts"] == "devpts" and dev[str(paths.hostdev)] == "devtmpfs"
        assert str(paths.hostdev) not in ours
        assert os.readlink(f"/proc/{pid}/root/dev/ptmx") == "pts/ptmx"
        assert not any(n.startswith("tap") for n in os.listdir(f"/proc/{pid}/root/dev"))
        conn = libvirt.open(paths.uri)
        assert conn.getType() == "QEMU" and conn.getURI().startswith("qemu+unix:///system?")
        conn.close()
    finally:
        libvirtd.stop(netns, paths, pid)
    assert programs_in(netns) == []
    assert not paths.hostdev.exists() and str(paths.root) not in Path("/proc/self/mountinfo").read_text()


def test_stop_takes_guests_and_dnsmasq_down_with_libvirtd(host):
    netns, paths = host
    pid = libvirtd.start(netns, paths)
    try:
        conn = libvirt.open(paths.uri)
        conn.networkDefineXML(NETWORK).create()
        conn.defineXML(DOMAIN).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        conn.close()
        running = programs_in(netns)
        assert "dnsmasq" in running and "qemu-system-x86_64" in running
    finally:
        libvirtd.stop(netns, paths, pid)
    assert programs_in(netns) == []
    links = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "lvdbr0" not in links and "vnet" not in links


def test_launch_command_binds_every_libvirt_dir_and_pins_libvirtd():
    cmd = libvirtd.launch_command("ns1", libvirtd.LibvirtdPaths(Path("/lab/hosts/host1/libvirt")), cpu=0)
    assert cmd[:4] == ["ip", "netns", "exec", "ns1"]
    assert cmd[4:8] == ["unshare", "--mount", "--propagation", "private"]
    script = cmd[-1]
    for name, target in libvirtd.PRIVATE_DIRS:
        assert f"mount --bind /lab/hosts/host1/libvirt/{name} {target}" in script
    assert script.endswith("exec taskset -c 0 libvirtd -f /etc/libvirt/libvirtd.conf "
                           "-p /lab/hosts/host1/libvirt/libvirtd.pid")
    assert 'unix_sock_dir = "/lab/s"' in libvirtd.libvirtd_conf(Path("/lab/s"))
    assert 'security_driver = "none"' in libvirtd.qemu_conf()


def test_lab_down_destroys_guests_and_networks_before_removing_the_host():
    from manager.lab import lab
    from manager.lab.layout import LabLayout

    root = Path(tempfile.mkdtemp(prefix="vft-lvd-"))  # the postgres user must reach the lab's cluster
    root.chmod(0o755)
    layout = LabLayout(root / "lab", prefix=f"vft{uuid.uuid4().hex[:4]}-")
    try:
        state = lab.up(layout, hosts=1, nics=1, libvirt=True)
        h = state.hosts[0]
        assert lab.status(layout)["hosts"][0]["libvirtd_alive"]
        conn = libvirt.open(h.libvirt_uri)
        conn.networkDefineXML(NETWORK).create()
        conn.defineXML(DOMAIN).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        conn.close()
        pids = namespaces.pids_in(h.netns)
        assert {"libvirtd", "dnsmasq", "qemu-system-x86_64"} <= set(programs_in(h.netns))
    finally:
        lab.down(layout)
        shutil.rmtree(root, ignore_errors=True)
    assert not namespaces.exists(h.netns)
    assert [p for p in pids if running(p)] == []
    assert not layout.state_dir.exists()
