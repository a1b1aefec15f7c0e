"""The committed host network configuration on disk, restored onto the kernel at agent start.

Saved atomically and durably, the way the journal is (agent.net.apply.journal):
a crash leaves the old file or the new one, never half of either. Next to the
configuration sits what each NIC was like before the agent took it (MTU,
up/down), so releasing a NIC later gives back exactly that.

The configuration's `generation` counts the changes saved on this host. A
change's journal names the generation its save will have, which is how a
restarted agent tells a change that was saved (keep it) from one that was not
(undo it); the manager compares it with the one it recorded to find a change
whose reply it never got.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

from google.protobuf.json_format import MessageToDict, ParseDict

from agent.net import crashpoints
from agent.net.apply import journal
from agent.net.hostnet.plan import Originals
from virtfleet import failpoints
from virtfleet.errors import FailedPrecondition
from virtfleet.v1 import hostnet_pb2

VERSION = 1


@dataclass(frozen=True)
class Saved:
    config: hostnet_pb2.HostNetworkConfig = field(default_factory=hostnet_pb2.HostNetworkConfig)
    originals: Originals = field(default_factory=dict)

    @property
    def generation(self) -> int:
        return self.config.generation


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
    """The commit point of a change: once this returns, a restarted agent keeps the change."""
    data = {"version": VERSION, "config": MessageToDict(saved.config), "originals": saved.originals}
    failpoints.hit(crashpoints.CONFIG_SAVING)
    journal.write_atomic(path, json.dumps(data, indent=1, sort_keys=True))
    failpoints.hit(crashpoints.CONFIG_SAVED)
