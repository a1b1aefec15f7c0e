"""Simulated hosts behind one AgentService listener, on one asyncio loop in one thread.

Each host keeps what a real agent's watcher keeps: the current state, a
sequence, an epoch and its last states, so streams start with a snapshot,
carry deltas (virtfleet.netdelta, as the real agent computes them), resume
after a reconnect and heartbeat while quiet. Calls say which host they mean
with the `x-virtfleet-host` metadata the manager's monitor sends, and pass the
same manager-only guard as a real agent's (agent.rpc.guard).
"""
from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc

from virtfleet import keepalive
from virtfleet.errors import NotFound
from virtfleet.hostnet import netdelta
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, netstate_pb2

from ..rpc.guard import manager_only
from . import hoststate

HOST_METADATA = "x-virtfleet-host"
HISTORY = 64

Change = Callable[[netstate_pb2.NetworkState], None]


class SimHost:
    def __init__(self, spec: hoststate.SimHostSpec, index: int) -> None:
        self.spec = spec
        self.state = hoststate.state(spec, index)
        self.epoch = uuid.uuid4().hex
        self.sequence = 1
        self.history: OrderedDict[int, netstate_pb2.NetworkState] = OrderedDict({1: self.state})
        self.changed: asyncio.Condition | None = None   # made on the loop
        self.connection = 0     # bumped to end open streams, as a network blip would

    def apply(self, change: Change) -> None:
        """A new state from a copy of the current one; never mutates a state a stream may hold."""
        new = netstate_pb2.NetworkState()
        new.CopyFrom(self.state)
        change(new)
        new.taken_at.GetCurrentTime()
        self.state = new
        self.sequence += 1
        self.history[self.sequence] = new
        while len(self.history) > HISTORY:
            self.history.popitem(last=False)

    def restart(self) -> None:
        """As an agent restart looks from outside: a new epoch, sequences from 1 again."""
        self.epoch = uuid.uuid4().hex
        self.sequence = 1
        self.history = OrderedDict({1: self.state})


class SimAgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, fleet: FleetSimulator) -> None:
        self._fleet = fleet

    def _host(self, context) -> SimHost:
        name = dict(context.invocation_metadata()).get(HOST_METADATA, "")
        host = self._fleet.hosts.get(name)
        if host is None:
            raise NotFound(f"this simulator has no host {name!r}")
        return host

    @manager_only
    async def GetCapabilities(self, request, context):
        host = self._host(context)
        return agent_pb2.Capabilities(hostname=host.spec.name, agent_version="sim", kernel_release="sim",
                                      kernel_features=["bridge", "tun", "veth", "macvlan", "macvtap", "vxlan"],
                                      nics=["eth0", "eth1"])

    @manager_only
    async def GetNetworkState(self, request, context):
        return self._host(context).state

    @manager_only
    async def WatchNetworkState(self, request, context):
        host = self._host(context)
        heartbeat = request.heartbeat_s or None
        base = host.history.get(request.resume_after) if request.epoch == host.epoch else None
        sent, sequence, epoch, connection = host.state, host.sequence, host.epoch, host.connection
        first = agent_pb2.NetworkStateEvent(sequence=sequence, epoch=epoch)
        if base is None:
            first.state.CopyFrom(sent)
        else:
            first.delta.CopyFrom(netdelta.diff(base, sent))
        yield first
        assert host.changed is not None
        while True:
            async with host.changed:
                try:
                    await asyncio.wait_for(host.changed.wait_for(
                        lambda: host.sequence != sequence or host.epoch != epoch or host.connection != connection),
                        heartbeat)
                except asyncio.TimeoutError:
                    beat = agent_pb2.NetworkStateEvent(sequence=sequence, epoch=epoch)
                    beat.delta.SetInParent()
                    yield beat
                    continue
            if host.epoch != epoch or host.connection != connection:
                return  # restarted or cut off: the stream ends, as a real agent's would
            event = agent_pb2.NetworkStateEvent(sequence=host.sequence, epoch=epoch)
            event.delta.CopyFrom(netdelta.diff(sent, host.state))
            sent, sequence = host.state, host.sequence
            yield event


class FleetSimulator:
    """`hosts` simulated hosts with `vms` × `nics` vNICs each, served on unix socket `socket_path`."""

    def __init__(self, material: TlsMaterial, socket_path: Path, *, hosts: int, vms: int = 0, nics: int = 2,
                 first: int = 1) -> None:
        self.socket_path = socket_path
        self.specs = [hoststate.spec(i, vms, nics) for i in range(first, first + hosts)]
        self.hosts = {s.name: SimHost(s, i) for i, s in zip(range(first, first + hosts), self.specs)}
        self._material = material
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet-simulator", daemon=True)
        self._server: grpc.aio.Server | None = None
        self._random = random.Random(8)

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> FleetSimulator:
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._run(self._server.stop(None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FleetSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def change(self, changes: Iterable[tuple[str, Change]]) -> None:
        """Apply changes (host name, function editing a state copy) in one go on the loop."""
        self._run(self._change(list(changes)))

    def restart(self, name: str) -> None:
        self._run(self._restart(name))

    def cut(self, name: str) -> None:
        """End the host's open streams without restarting it: the manager should resume, not re-read."""
        self._run(self._cut(name))

    def sequences(self) -> dict[str, tuple[str, int]]:
        return {name: (h.epoch, h.sequence) for name, h in self.hosts.items()}

    def churn(self, count: int) -> int:
        """`count` realistic changes on random hosts: a vNIC's tap goes down or comes back up."""
        names = list(self.hosts)
        changes = []
        for _ in range(count):
            name = self._random.choice(names)
            tap = self._random.randrange(len(self.hosts[name].spec.vnics) or 1)
            changes.append((name, _toggle_link(5 + tap)))
        self.change(changes)
        return count

    def churn_round(self) -> int:
        """One change on every host (a random tap of each flips), applied together."""
        changes = []
        for name, host in self.hosts.items():
            tap = self._random.randrange(len(host.spec.vnics) or 1)
            changes.append((name, _toggle_link(5 + tap)))
        self.change(changes)
        return len(changes)

    # -- on the loop -----------------------------------------------------------------

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    async def _start(self) -> None:
        for host in self.hosts.values():
            host.changed = asyncio.Condition()
        self.socket_path.unlink(missing_ok=True)
        server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 100000), *keepalive.SERVER_OPTIONS])
        agent_pb2_grpc.add_AgentServiceServicer_to_server(SimAgentServicer(self), server)
        server.add_secure_port(self.endpoint, self._material.server_credentials())
        await server.start()
        self._server = server

    async def _change(self, changes: list[tuple[str, Change]]) -> None:
        touched = {}
        for name, change in changes:
            host = self.hosts[name]
            host.apply(change)
            touched[name] = host
        for host in touched.values():
            assert host.changed is not None
            async with host.changed:
                host.changed.notify_all()

    async def _cut(self, name: str) -> None:
        host = self.hosts[name]
        host.connection += 1
        assert host.changed is not None
        async with host.changed:
            host.changed.notify_all()

    async def _restart(self, name: str) -> None:
        host = self.hosts[name]
        host.restart()
        assert host.changed is not None
        async with host.changed:
            host.changed.notify_all()


def _toggle_link(position: int) -> Change:
    """Flip one link between up and down, as a guest's NIC going away and back would."""

    def change(state: netstate_pb2.NetworkState) -> None:
        link = state.links[min(position, len(state.links) - 1)]
        up = "UP" in link.flags
        del link.flags[:]
        link.flags.extend(["BROADCAST", "MULTICAST"] if up else hoststate.UP)
        link.oper_state = "DOWN" if up else "UP"

    return change


def set_mtu(link_name: str, mtu: int) -> Change:
    def change(state: netstate_pb2.NetworkState) -> None:
        next(link for link in state.links if link.name == link_name).mtu = mtu

    return change


def remove_link(link_name: str) -> Change:
    def change(state: netstate_pb2.NetworkState) -> None:
        links = [link for link in state.links if link.name != link_name]
        for link in links:
            if link.kind == "bridge" and link_name in link.bridge.ports:
                link.bridge.ports.remove(link_name)
        del state.links[:]
        state.links.extend(links)

    return change
