"""Following each watched host's state stream, reconnecting and resuming where it left off.

Each host's stream starts with a snapshot, then carries deltas; after a
reconnect the follower asks to resume from the (epoch, sequence) the manager
holds and the agent answers with just the missed changes, or a snapshot when
it cannot. Agents send an empty delta after `heartbeat_s` quiet seconds, so a
quiet host still shows it is alive.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from virtfleet.v1 import agent_pb2, agent_pb2_grpc

from .clients import AgentClients
from .states import DeltaWithoutBase, HostState

log = logging.getLogger(__name__)

# The simulator serves many hosts on one socket and tells them apart by this; real agents ignore it.
HOST_METADATA = "x-virtfleet-host"

Ingest = Callable[[str, agent_pb2.NetworkStateEvent], None]


class HostStreams:
    """Which hosts are followed, and one task per host following it; runs on the monitor's loop.

    Hosts watched before `start` are remembered and followed from `start` on.
    """

    def __init__(self, clients: AgentClients, held: Callable[[str], HostState | None], ingest: Ingest,
                 heartbeat_s: Callable[[], int]) -> None:
        self._clients = clients
        self._held = held
        self._ingest = ingest
        self._heartbeat_s = heartbeat_s
        self._endpoints: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._started = False

    def watched(self) -> set[str]:
        return set(self._endpoints)

    def watch(self, name: str, endpoint: str) -> None:
        if name in self._endpoints:
            return
        self._endpoints[name] = endpoint
        if self._started:
            self._follow_task(name)

    def unwatch(self, name: str) -> None:
        self._endpoints.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def start(self) -> None:
        """On the loop: follow every host watched so far."""
        self._started = True
        for name in self._endpoints:
            if name not in self._tasks:
                self._follow_task(name)

    def stop(self) -> None:
        self._started = False
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def _follow_task(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._follow(name, self._endpoints[name]), name=f"monitor-{name}")

    async def _follow(self, name: str, endpoint: str) -> None:
        backoff = 0.1
        while True:
            held = self._held(name)
            request = agent_pb2.WatchNetworkStateRequest(
                resume_after=held.sequence if held else 0, epoch=held.epoch if held else "",
                heartbeat_s=self._heartbeat_s())
            stub = agent_pb2_grpc.AgentServiceStub(self._clients.aio_channel(name, endpoint))
            call = stub.WatchNetworkState(request, metadata=((HOST_METADATA, name),))
            try:
                async for event in call:
                    self._ingest(name, event)
                    backoff = 0.1
            except grpc.aio.AioRpcError as exc:
                log.info("lost the state stream of host %s: %s %s", name, exc.code().name, exc.details())
            except DeltaWithoutBase as exc:
                # Should not happen (we resume only from what we hold); start over with a snapshot.
                log.warning("%s; starting its stream over", exc)
                call.cancel()
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception:
                log.exception("following host %s failed", name)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
