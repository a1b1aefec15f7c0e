"""The README's first command: a lab datacenter of two hosts with ovirtmgmt on each.

It runs the same `virtfleet` commands an admin would type, and prints them.
The lab stays up afterwards for exploring; the last lines say how to take it down.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from .lab import is_up
from .layout import LabLayout

CLI = str(Path(sys.executable).with_name("virtfleet"))


def run(*args: str) -> None:
    print(f"\n$ virtfleet {shlex.join(args)}", flush=True)
    subprocess.run([CLI, *args], check=True)


def main() -> int:
    layout = LabLayout.from_env()
    if is_up(layout) or layout.state_file.exists():
        print(f"a lab is already up in {layout.state_dir}; take it down first:\n  {CLI} lab down", file=sys.stderr)
        return 1
    try:
        run("lab", "up", "--hosts", "2")
        run("host", "list")
        for host in ("host1", "host2"):
            run("host", "setup-management", host, "--nic", "eth0")
        for host in ("host1", "host2"):
            run("host", "report", host)
        run("host", "list")
        run("lab", "status")
    except subprocess.CalledProcessError as exc:
        print(f"\ndemo failed at: {shlex.join(exc.cmd[1:])}", file=sys.stderr)
        return 1
    print(f"\nThe lab is still up. Explore it with {CLI} (try `host show host1`),")
    print(f"or look inside a host: ip netns exec {layout.prefix}host1 ip addr show")
    print(f"Tear it down with:\n  {CLI} lab down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
