"""What the lab's supervisor runs, read from lab.json: the manager and one agent per host.

A unit is wanted once `lab up` has put its record in lab.json; its command is
derived from the record alone, so a restart runs exactly what the first start ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .layout import LabLayout, LabState, Supervised
from .processes import agent_command, manager_command

MANAGER = "manager"
AGENT = "agent/"          # + host name


@dataclass(frozen=True)
class Unit:
    name: str
    command: list[str]
    log_file: Path


def units(state: LabState) -> list[Unit]:
    layout = LabLayout.of(state)
    found = []
    if state.manager is not None:
        found.append(Unit(MANAGER, manager_command(state.dsn, Path(state.manager_socket), layout.manager_pki,
                                                    state.fleet_endpoint, layout.enroll_socket),
                          layout.manager_log))
    for h in state.hosts:
        if h.agent is not None:
            found.append(Unit(AGENT + h.name,
                              agent_command(h.netns, Path(h.agent_socket), layout.agent_pki(h.name),
                                            layout.agent_state(h.name), h.libvirt_uri,
                                            layout.agent_health_socket(h.name), layout.agent_libvirt_pki(h.name)),
                              layout.agent_log(h.name)))
    return found


def record(state: LabState, name: str) -> Supervised:
    """The unit's entry in lab.json."""
    if name == MANAGER:
        assert state.manager is not None
        return state.manager
    agent = state.host(name.removeprefix(AGENT)).agent
    assert agent is not None
    return agent
