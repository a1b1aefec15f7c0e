"""The network devices of this host (its network namespace), as the kernel lists them in sysfs.

Read only when libvirt refused to start or hot-plug, to tell which vNIC's source is missing:
libvirt's own message names the device but not the vNIC.
"""
from __future__ import annotations

from pathlib import Path

SYS_NET = Path("/sys/class/net")


def host_devices(root: Path = SYS_NET) -> tuple[set[str], set[str]]:
    """(all device names, bridge names)."""
    names = {p.name for p in root.iterdir()} if root.is_dir() else set()
    return names, {n for n in names if (root / n / "bridge").is_dir()}
