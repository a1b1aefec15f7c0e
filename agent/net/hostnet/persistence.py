"""The committed host network configuration on disk, restored onto the kernel at agent start.

Saved atomically (temporary file, fsync, rename, fsync of the directory): a
crash leaves the old file or the new one, never half of either. Next to the
configuration sits what each NIC was like before the agent took it (MTU,
up/down), so releasing a NIC later gives back exactly that.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from dataclasses import dataclass, field

from google.protobuf.json_format import MessageToDict, ParseDict

from agent.net.errors import FailedPrecondition
from agent.net.hostnet.plan import Originals
from virtfleet.v1 import hostnet_pb2

VERSION = 1


@dataclass(frozen=True)
class Saved:
    config: hostnet_pb2.HostNetworkConfig = field(default_factory=hostnet_pb2.HostNetworkConfig)
    originals: Originals = field(default_factory=dict)


def load(path: pathlib.Path) -> Saved:
    """The saved configuration; an empty one on a host that never had any."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Saved()
    if data.get("version") != VERSION:
        raise FailedPrecondition(f"{path} has unknown version {data.get('version')!r}")
    config = ParseDict(data.get("config", {}), hostnet_pb2.HostNetworkConfig())
    return Saved(config, {k: dict(v) for k, v in data.get("originals", {}).items()})


def save(path: pathlib.Path, saved: Saved) -> None:
    data = {"version": VERSION, "config": MessageToDict(saved.config), "originals": saved.originals}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        json.dump(data, tmp, indent=1, sort_keys=True)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)
    fsync_dir(path.parent)


def discard(path: pathlib.Path) -> None:
    """Remove a file for good (a confirmed change's journal)."""
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
