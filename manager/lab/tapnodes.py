"""`/dev/tap<ifindex>` for a lab host's own macvtaps, in its libvirtd's private /dev.

Why: lab hosts are network namespaces on one kernel, sharing one devtmpfs. libvirt opens a macvtap's
character device by name, `/dev/tap<ifindex>`, and ifindexes are per network namespace, so two identical
hosts' macvtaps often have the same one: devtmpfs keeps the first host's node under that name, and the
second host's libvirtd would open the *other* host's macvtap (its QEMU then reads a stranger's queue).
So each lab libvirtd gets a private /dev (`libvirtd.launch_command`), and this watcher, started in the
same mount and network namespaces, makes the nodes udev would make — from this namespace's own
/sys/class/net/*/macvtap/tap<ifindex>/dev — and removes them when the link goes.

It is event-driven (rtnetlink link group): libvirt waits for a missing node only ~200 ms (10 × 20 ms,
"waiting for udev"). It reports ready (its starter returns) once it listens and has made the nodes of
the macvtaps already there, and it exits when the libvirtd it serves exits (a pidfd on that pid).

Run: `python -m manager.lab.tapnodes --libvirtd PID [--dev /dev] [--sys /sys] [--pid-file FILE]`.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import select
import stat
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MODULE = "manager.lab.tapnodes"     # how libvirtd.leftovers recognises the watcher in /proc/PID/cmdline
_TAP_DIR = re.compile(r"^tap(\d+)$")


def parse_dev(text: str) -> tuple[int, int]:
    """`MAJOR:MINOR` as sysfs writes it in a device's `dev` file."""
    major, sep, minor = text.strip().partition(":")
    if not sep or not major.isdigit() or not minor.isdigit():
        raise ValueError(f"not a MAJOR:MINOR device number: {text!r}")
    return int(major), int(minor)


def node_path(dev: Path, ifindex: int) -> Path:
    """The name libvirt opens for a macvtap (virNetDevMacVLanTapOpen): /dev/tap<ifindex>."""
    return dev / f"tap{ifindex}"


def ifindex_of_tap_dir(name: str) -> int | None:
    """`tap13` (a macvtap's class device under /sys/class/net/NAME/macvtap/) → 13."""
    m = _TAP_DIR.match(name)
    return int(m.group(1)) if m else None


def read_macvtaps(sys_root: Path) -> dict[int, tuple[int, int]]:
    """This network namespace's macvtaps: ifindex → (major, minor) of its character device."""
    found = {}
    for dev_file in (sys_root / "class" / "net").glob("*/macvtap/tap*/dev"):
        ifindex = ifindex_of_tap_dir(dev_file.parent.name)
        if ifindex is None:
            continue
        try:
            found[ifindex] = parse_dev(dev_file.read_text())
        except (OSError, ValueError):
            continue   # the link went while we read it
    return found


def read_macvtap(sys_root: Path, ifindex: int) -> tuple[int, int] | None:
    """One link's device number, None when it is not (or no longer) a macvtap. By the tap directory's name,
    which carries the ifindex: the link may have been renamed since its event."""
    for dev_file in (sys_root / "class" / "net").glob(f"*/macvtap/tap{ifindex}/dev"):
        try:
            return parse_dev(dev_file.read_text())
        except (OSError, ValueError):
            return None
    return None


def make_node(dev: Path, ifindex: int, number: tuple[int, int]) -> bool:
    """Creates (or corrects) /dev/tap<ifindex>, root-only as udev leaves it; True when it changed."""
    path = node_path(dev, ifindex)
    rdev = os.makedev(*number)
    try:
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.new")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.mknod(tmp, stat.S_IFCHR | 0o600, rdev)
    os.replace(tmp, path)   # never a moment with a wrong node under the name
    return True


def remove_node(dev: Path, ifindex: int) -> bool:
    try:
        os.unlink(node_path(dev, ifindex))
        return True
    except FileNotFoundError:
        return False


def existing_nodes(dev: Path) -> set[int]:
    return {i for p in dev.glob("tap*") if (i := ifindex_of_tap_dir(p.name)) is not None}


def sync(dev: Path, sys_root: Path) -> None:
    """Nodes for exactly the macvtaps there are (at start, and after netlink lost events)."""
    present = read_macvtaps(sys_root)
    for ifindex, number in present.items():
        if make_node(dev, ifindex, number):
            log.info("made %s (%d:%d)", node_path(dev, ifindex), *number)
    for ifindex in existing_nodes(dev) - present.keys():
        remove_node(dev, ifindex)
        log.info("removed %s", node_path(dev, ifindex))


def on_link_event(dev: Path, sys_root: Path, event: str, ifindex: int) -> None:
    if event == "RTM_NEWLINK":
        number = read_macvtap(sys_root, ifindex)
        if number is not None and make_node(dev, ifindex, number):
            log.info("made %s (%d:%d)", node_path(dev, ifindex), *number)
    elif event == "RTM_DELLINK" and remove_node(dev, ifindex):
        log.info("removed %s", node_path(dev, ifindex))


def _exit_with(pid: int) -> None:
    """Ends this process when `pid` (the libvirtd served) exits, however it exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)

    def wait() -> None:
        select.select([fd], [], [])
        log.info("libvirtd %d exited; stopping", pid)
        os._exit(0)

    threading.Thread(target=wait, name="libvirtd-exit", daemon=True).start()


def watch(dev: Path, sys_root: Path, ready_fd: int | None) -> None:
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl import RTMGRP_LINK

    with IPRoute() as ipr:
        ipr.bind(groups=RTMGRP_LINK)   # listening before the first sync: no link falls between the two
        sync(dev, sys_root)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        while True:
            try:
                messages = ipr.get()
            except OSError as exc:   # ENOBUFS: events were lost; read the state again
                log.warning("netlink: %s; resynchronising", exc)
                sync(dev, sys_root)
                continue
            for msg in messages:
                on_link_event(dev, sys_root, msg.get("event"), msg["index"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--libvirtd", type=int, required=True, help="exit when this pid exits")
    parser.add_argument("--dev", type=Path, default=Path("/dev"))
    parser.add_argument("--sys", dest="sys_root", type=Path, default=Path("/sys"))
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="tapnodes[%(process)d]: %(message)s", stream=sys.stderr)

    # The starter (the shell that then execs libvirtd) returns once the watcher listens and made the nodes
    # already due; the watcher itself lives on in the background.
    read_end, write_end = os.pipe()
    child = os.fork()
    if child:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            ok = ready.read() == b"ready\n"
        return 0 if ok else 1
    os.close(read_end)
    try:
        if args.pid_file:
            args.pid_file.write_text(f"{os.getpid()}\n")
        _exit_with(args.libvirtd)
        watch(args.dev, args.sys_root, write_end)
    except BaseException:
        log.exception("tapnodes stopped")
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
