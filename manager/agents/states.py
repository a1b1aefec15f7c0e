"""Every host's current network state, in memory, and who wants to hear of each change.

Memory is the truth for the audit (parsing a thousand JSON reports back out of
PostgreSQL would cost more than the audit itself). Only the monitor's loop
writes here; other threads read a whole `HostState` or a copy of the mapping,
both of which are single operations under the GIL.

A thousand hosts' states are a few hundred thousand long-lived objects; the
cyclic garbage collector's full passes over them paused the loop for 200-300
ms (measured: the p99 of kernel-change-to-manager latency). Held states are
therefore moved out of its way (gc.freeze) once new ones have arrived;
reference counting still frees each state when it is replaced, and nothing
here builds reference cycles.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

from virtfleet.hostnet import netdelta
from virtfleet.v1 import agent_pb2, netstate_pb2


@dataclass(frozen=True)
class HostState:
    """What the manager holds of one host: its state, where in its stream it is, when it last spoke."""

    name: str
    state: netstate_pb2.NetworkState
    epoch: str
    sequence: int
    reported_at: dt.datetime      # wall clock, for people
    reported_mono: float          # monotonic, for the unreachable limit
    reachable: bool = True
    config_generation: int = 0    # the agent's saved network configuration's generation (lost replies)


Listener = Callable[[HostState, agent_pb2.NetworkStateEvent], None]


class DeltaWithoutBase(Exception):
    """A delta for a state the manager does not hold: the stream must start over from a snapshot."""


class HostStates:
    def __init__(self) -> None:
        self._hosts: dict[str, HostState] = {}
        self._listeners: list[Listener] = []
        self.events_ingested = 0
        self.changes_ingested = 0
        self.replaced = 0          # states replaced by new objects (what the freezer watches)

    def current(self, name: str) -> HostState | None:
        return self._hosts.get(name)

    def snapshot(self) -> dict[str, HostState]:
        """Every host's current state (a consistent copy of the mapping, taken at once)."""
        return dict(self._hosts)

    def add_listener(self, listener: Listener) -> None:
        """Called on the monitor's loop after each event is applied; must be quick."""
        self._listeners.append(listener)

    def ingest(self, name: str, event: agent_pb2.NetworkStateEvent) -> tuple[HostState, bool]:
        """Apply one event of a host's stream; returns the new state and whether it is news to store.

        A heartbeat (an empty delta, same sequence) is not news: only the host's last report time moves.
        """
        held = self._hosts.get(name)
        if event.HasField("state"):
            state = event.state
        elif held is not None and held.epoch == event.epoch:
            state = held.state if netdelta.is_empty(event.delta) else netdelta.apply_delta(held.state, event.delta)
            self.changes_ingested += netdelta.change_count(event.delta)
        else:
            raise DeltaWithoutBase(f"host {name} sent a delta for a state the manager does not hold")
        if held is None or state is not held.state:
            self.replaced += 1
        news = (held is None or state is not held.state or not held.reachable or held.sequence != event.sequence)
        current = HostState(name, state, event.epoch, event.sequence, dt.datetime.now(dt.timezone.utc),
                            time.monotonic(), config_generation=event.config_generation)
        self._hosts[name] = current
        self.events_ingested += 1
        for listener in self._listeners:
            listener(current, event)
        return current, news

    def mark_unreachable(self, name: str) -> None:
        held = self._hosts.get(name)
        if held is not None and held.reachable:
            self._hosts[name] = dataclasses.replace(held, reachable=False)

    def forget(self, name: str) -> None:
        self._hosts.pop(name, None)


async def keep_frozen(states: HostStates, every_s: float = 2.0) -> None:
    """Freeze what the collector has seen once new states have arrived (see the module's docstring)."""
    frozen_at = -1
    while True:
        await asyncio.sleep(every_s)
        if states.replaced != frozen_at:
            gc.freeze()
            frozen_at = states.replaced
