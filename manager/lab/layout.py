"""Where a lab keeps its files, and its record `lab.json`.

`lab.json` is the lab's only memory: `lab down` and `lab status` take everything
from it (prefix, namespaces, processes), never from defaults or name patterns,
so they can touch nothing another lab made. Two processes write it — `lab up`
and the lab's supervisor, which records the pids it restarts — so every change
is a read-modify-write under a lock (`locked_state`); readers need no lock
because a write replaces the file whole.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/virtfleet/lab")
DEFAULT_PREFIX = "vf-"


@dataclass(frozen=True)
class ProcessId:
    """One process for good: a pid is recycled, a pid with its start time is not."""
    pid: int
    started: int   # clock ticks after boot, field 22 of /proc/PID/stat


def _process_id(data: dict | None) -> ProcessId | None:
    return ProcessId(**data) if data else None


class UnknownStateFormat(ValueError):
    """lab.json was written by another version of virtfleet."""


@dataclass
class Supervised:
    """A process the lab's supervisor keeps running (the manager, each agent), as systemd keeps a unit.

    status: "starting" (lab up asked for it), "running", "restarting" (crashed, restart pending),
    "stopped" (exited cleanly: on-failure leaves it down) or "failed" (hit the start limit).
    """
    status: str = "starting"
    process: ProcessId | None = None
    restarts: int = 0
    last_exit: str = ""        # how the previous run ended: "exit 2", "killed by SIGKILL"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @classmethod
    def from_dict(cls, data: dict | None) -> "Supervised | None":
        if data is None:
            return None
        return cls(**{**data, "process": _process_id(data.get("process"))})


@dataclass
class LabHost:
    name: str                 # host name in the manager, e.g. "host1"
    netns: str                # its network namespace
    address: str              # its eth0 address
    agent_socket: str
    agent: Supervised | None = None   # None until lab up asks the supervisor for it
    nics: list[str] = field(default_factory=lambda: ["eth0"])
    libvirtd: ProcessId | None = None  # the host's own libvirtd (None: the lab runs without libvirt)
    libvirt_uri: str = ""              # what its agent connects to: qemu+unix:///system?socket=...

    @classmethod
    def from_dict(cls, data: dict) -> "LabHost":
        return cls(**{**data, "agent": Supervised.from_dict(data.get("agent")),
                      "libvirtd": _process_id(data.get("libvirtd"))})


@dataclass
class LabState:
    state_dir: str
    prefix: str
    switch_netns: str
    manager_socket: str
    # Every namespace this lab created, with the inode it had: the only ones `lab down` removes.
    namespaces: dict[str, int] = field(default_factory=dict)
    supervisor: ProcessId | None = None
    manager: Supervised | None = None
    postgres_dir: str | None = None   # None when an external DSN is used
    postgres: ProcessId | None = None  # the private cluster's postmaster
    dsn: str = ""
    fleet_endpoint: str = ""        # HOST:PORT of the manager's remote fleet API (loopback)
    admin_cert_dir: str = ""        # the lab admin's certificate for it
    hosts: list[LabHost] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> "LabState":
        data = json.loads(text)
        try:
            return cls(**{**data, "hosts": [LabHost.from_dict(h) for h in data.get("hosts", [])],
                          "supervisor": _process_id(data.get("supervisor")),
                          "postgres": _process_id(data.get("postgres")),
                          "manager": Supervised.from_dict(data.get("manager"))})
        except TypeError as exc:   # fields this version does not know, or lacks
            raise UnknownStateFormat(str(exc)) from exc

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)


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

    @classmethod
    def of(cls, state: LabState) -> "LabLayout":
        """The layout a recorded lab was made with."""
        return cls(Path(state.state_dir), state.prefix)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "lab.lock"

    @property
    def manager_socket(self) -> Path:
        return self.state_dir / "manager.sock"

    @property
    def manager_pki(self) -> Path:
        return self.state_dir / "manager-pki"

    @property
    def admin_cert_dir(self) -> Path:
        return self.state_dir / "admin-cert"

    @property
    def enroll_socket(self) -> Path:
        """The manager's enrollment listener; the hosts' namespaces share the file system, so they reach it."""
        return self.state_dir / "enroll.sock"

    @property
    def manager_log(self) -> Path:
        return self.state_dir / "manager.log"

    @property
    def supervisor_log(self) -> Path:
        return self.state_dir / "supervisor.log"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def switch_netns(self) -> str:
        return f"{self.prefix}switch"

    def host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def agent_log(self, name: str) -> Path:
        return self.host_dir(name) / "agent.log"

    def agent_pki(self, name: str) -> Path:
        return self.host_dir(name) / "pki"

    def agent_libvirt_pki(self, name: str) -> Path:
        """The host's libvirtd certificate files, written by its agent (its `libvirt_pki_dir`)."""
        return self.agent_pki(name) / "libvirt"

    def agent_health_socket(self, name: str) -> Path:
        return self.host_dir(name) / "health.sock"

    def agent_state(self, name: str) -> Path:
        return self.host_dir(name) / "state"

    def host_netns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def read_state(self) -> LabState | None:
        try:
            return LabState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def write_state(self, state: LabState) -> None:
        """Only for the first write (nobody else knows the lab yet); later changes go through locked_state."""
        tmp = self.state_file.with_name(f"lab.json.tmp{os.getpid()}")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def locked_state(self) -> Iterator[LabState]:
        """The current record, written back when the block ends without an exception."""
        with open(self.lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read_state()
            if state is None:
                raise FileNotFoundError(self.state_file)
            yield state
            self.write_state(state)
