"""Where a lab keeps its files, and the state file scripts read (`lab status -o json`)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/virtfleet/lab")
DEFAULT_PREFIX = "vf-"


@dataclass
class LabHost:
    name: str                 # host name in the manager, e.g. "host1"
    netns: str                # its network namespace
    address: str              # its eth0 address
    agent_socket: str
    agent_pid: int | None = None
    nics: list[str] = field(default_factory=lambda: ["eth0"])
    libvirtd_pid: int | None = None   # the host's own libvirtd (None: the lab runs without libvirt)
    libvirt_uri: str = ""             # what its agent connects to: qemu+unix:///system?socket=...


@dataclass
class LabState:
    state_dir: str
    prefix: str
    switch_netns: str
    manager_socket: str
    manager_pid: int | None = None
    postgres_dir: str | None = None   # None when an external DSN is used
    dsn: str = ""
    hosts: list[LabHost] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> "LabState":
        data = json.loads(text)
        data["hosts"] = [LabHost(**h) for h in data.get("hosts", [])]
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass(frozen=True)
class LabLayout:
    state_dir: Path
    prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_env(cls, state_dir: Path | None = None, prefix: str | None = None) -> "LabLayout":
        return cls(
            Path(state_dir or os.environ.get("VIRTFLEET_LAB_DIR") or DEFAULT_STATE_DIR),
            prefix or os.environ.get("VIRTFLEET_LAB_PREFIX") or DEFAULT_PREFIX,
        )

    @property
    def state_file(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def manager_socket(self) -> Path:
        return self.state_dir / "manager.sock"

    @property
    def manager_pki(self) -> Path:
        return self.state_dir / "manager-pki"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def switch_netns(self) -> str:
        return f"{self.prefix}switch"

    def host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def host_netns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def read_state(self) -> LabState | None:
        try:
            return LabState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def write_state(self, state: LabState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)
