"""The tapnodes watcher's decisions: which node, with which device number, from a namespace's /sys.

The /sys trees here are files laid out as the kernel lays out /sys/class/net/NAME/macvtap/tapN/dev;
the nodes are real device nodes made in a temporary directory (root only, as the lab itself).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from manager.lab import libvirtd, tapnodes


def sysfs(root: Path, links: dict[str, tuple[int, str]]) -> Path:
    """name → (ifindex, dev file text); a link without a macvtap directory is any other kind."""
    for name, (ifindex, dev) in links.items():
        d = root / "class" / "net" / name
        d.mkdir(parents=True)
        (d / "ifindex").write_text(f"{ifindex}\n")
        if dev:
            (d / "macvtap" / f"tap{ifindex}").mkdir(parents=True)
            (d / "macvtap" / f"tap{ifindex}" / "dev").write_text(dev)
    return root


def test_a_dev_file_is_major_colon_minor():
    assert tapnodes.parse_dev("240:1\n") == (240, 1)
    for bad in ("", "240", "240:", "a:1", "240:1:2"):
        with pytest.raises(ValueError):
            tapnodes.parse_dev(bad)


def test_libvirt_opens_a_macvtap_as_dev_tap_ifindex():
    assert tapnodes.node_path(Path("/dev"), 13) == Path("/dev/tap13")
    assert tapnodes.ifindex_of_tap_dir("tap13") == 13
    assert tapnodes.ifindex_of_tap_dir("tap") is None and tapnodes.ifindex_of_tap_dir("macvtap0") is None


def test_only_macvtaps_of_this_namespace_are_read(tmp_path):
    root = sysfs(tmp_path, {"eth0": (2, ""), "macvtap0": (13, "240:1\n"), "macvtap1": (14, "240:2\n")})
    assert tapnodes.read_macvtaps(root) == {13: (240, 1), 14: (240, 2)}
    assert tapnodes.read_macvtap(root, 14) == (240, 2)
    assert tapnodes.read_macvtap(root, 2) is None and tapnodes.read_macvtap(root, 99) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")
def test_nodes_follow_the_links_and_a_wrong_node_is_replaced(tmp_path):
    dev, root = tmp_path / "dev", sysfs(tmp_path / "sys", {"macvtap0": (13, "240:1\n")})
    dev.mkdir()
    os.mknod(dev / "tap7", stat.S_IFCHR | 0o600, os.makedev(240, 9))      # a link gone meanwhile
    os.mknod(dev / "tap13", stat.S_IFCHR | 0o600, os.makedev(240, 5))     # another link's old number
    tapnodes.sync(dev, root)
    assert sorted(os.listdir(dev)) == ["tap13"]
    st = os.lstat(dev / "tap13")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(240, 1) and stat.S_IMODE(st.st_mode) == 0o600
    assert not tapnodes.make_node(dev, 13, (240, 1))    # already right: left alone

    sysfs(root, {"macvtap1": (14, "240:2\n")})
    tapnodes.on_link_event(dev, root, "RTM_NEWLINK", 14)
    tapnodes.on_link_event(dev, root, "RTM_NEWLINK", 2)    # not a macvtap: nothing
    assert sorted(os.listdir(dev)) == ["tap13", "tap14"]
    tapnodes.on_link_event(dev, root, "RTM_DELLINK", 13)
    assert sorted(os.listdir(dev)) == ["tap14"]


def test_the_watcher_is_known_by_its_command_line():
    assert libvirtd.is_tapnodes([b"/usr/bin/python3", b"-m", b"manager.lab.tapnodes", b"--libvirtd", b"5", b""])
    assert not libvirtd.is_tapnodes([b"/usr/bin/python3", b"-m", b"agent.main", b""])


def test_libvirtd_gets_a_private_dev_and_the_watcher_before_it_starts():
    paths = libvirtd.LibvirtdPaths(Path("/lab/h1/libvirt"))
    script = libvirtd.launch_command("ns1", paths, 0)[-1]
    steps = script.split("; ")
    assert "mount --rbind /dev /lab/h1/libvirt/hostdev" in steps
    assert steps.index("mount --rbind /dev /lab/h1/libvirt/hostdev") < steps.index(
        "mount -t tmpfs -o mode=0755,nosuid virtfleet-dev /dev")
    assert "ln -s pts/ptmx /dev/ptmx" in steps
    watcher = next(i for i, s in enumerate(steps) if " -m manager.lab.tapnodes --libvirtd $$ " in s)
    assert steps[watcher + 1].startswith("exec taskset -c 0 libvirtd")
