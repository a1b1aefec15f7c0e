"""A host's memory and what its libvirt offers, learnt from its agent each time the host comes up or comes back.

The memory is recorded in PostgreSQL (hosts.memory_total_mib); the libvirt networks active
and the network filters defined are kept in memory (`offers`), as the monitor keeps reports:
they are facts of the host now, learnt again at each connection and before each migration
to it (`learn`), never an admin's record.

Placement weighs free memory, so the manager must know what each host has: it asks the
agent (GetHostResources) once per connection — the first event heard of a host, a new
agent run, a snapshot, the first event after a silence (labelcatchup.came_back, the same
rule the label catch-up uses) — never per placement, which stays a database read. The
call is made on the monitor's loop over the channel its stream already holds (a fleet of
simulated hosts gets no second connection each), and the database is read and written
off the loop.

An agent that predates the call answers UNIMPLEMENTED: its memory stays unknown
(placement then passes the memory filter and says "memory unknown") and it is not
asked again until it comes back, which is when a newer agent would arrive. A host that
cannot be reached stays due and is asked at its next event.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import grpc
from psycopg_pool import ConnectionPool

from virtfleet.errors import NotFound, Unavailable, Unimplemented
from virtfleet.v1 import agent_pb2, vm_pb2, vm_pb2_grpc

from ..agents import AgentClients, HostMonitor
from ..agents.states import HostState
from ..agents.streams import HOST_METADATA
from ..store import hosts as host_store
from ..store.hosts import HostRecord
from .labelcatchup import Heard, came_back

log = logging.getLogger(__name__)


CALL_TIMEOUT_S = 10.0


class HostMemory:
    def __init__(self, pool: ConnectionPool, agents: AgentClients, monitor: HostMonitor | None = None, *,
                 no_vm_service: Callable[[str], object] | None = None) -> None:
        """`no_vm_service(host)`: told when a host's agent answers UNIMPLEMENTED (it has no VM runtime at all:
        the fleet simulator), so VM reconciliation need not ask it either."""
        self._no_vm_service = no_vm_service or (lambda host: None)
        self._pool = pool
        self._agents = agents
        self._monitor = monitor
        self._lock = threading.Lock()
        self._heard: dict[str, Heard] = {}
        self._due: set[str] = set()
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task] = set()    # held until done (the loop keeps only weak references)
        self._offers: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {}
        if monitor is not None:
            monitor.add_listener(self._event)

    def learn(self, host: str) -> int | None:
        """Ask the host's agent now and record what it has; None when the agent cannot say (UNIMPLEMENTED).

        Unavailable when the host cannot be reached; NotFound when it does not exist.
        """
        record = self._host(host)
        try:
            reply = self._agents.call_vm(record.name, record.endpoint, lambda s, t: s.GetHostResources(
                vm_pb2.GetHostResourcesRequest(), timeout=t), for_caller=False)
        except Unimplemented:
            log.debug("host %s: its agent does not report its memory; placement treats it as unknown", host)
            return None
        return self._record(host, reply)

    def offers(self, host: str) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """(libvirt networks active, network filters defined) as the host's agent last said; None where it has not
        said (or, for filters, where its libvirt has no nwfilter driver)."""
        with self._lock:
            networks, filters = self._offers.get(host, (None, None))
        return networks, filters

    def idle(self, host: str) -> bool:
        """Neither due nor being asked (tests)."""
        with self._lock:
            return host not in self._due and host not in self._running

    # -- the monitor's side ------------------------------------------------------------------

    def _event(self, state: HostState, event: agent_pb2.NetworkStateEvent) -> None:
        """On the monitor's loop: a comparison, and for a host that (re)appeared a task on the same loop."""
        name = state.name
        limit = self._monitor.unreachable_after_s if self._monitor is not None else 30.0
        now = Heard(state.epoch, state.reported_mono)
        with self._lock:
            if came_back(self._heard.get(name), now, limit, snapshot=event.HasField("state")):
                self._due.add(name)
            self._heard[name] = now
            if name not in self._due or name in self._running:
                return
            self._running.add(name)
        task = asyncio.get_running_loop().create_task(self._learn_on_loop(name), name=f"host-memory-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn_on_loop(self, host: str) -> None:
        done = True
        try:
            record = await asyncio.to_thread(self._host, host)
            stub = vm_pb2_grpc.VmAgentServiceStub(self._agents.aio_channel(record.name, record.endpoint))
            try:
                reply = await stub.GetHostResources(vm_pb2.GetHostResourcesRequest(), timeout=CALL_TIMEOUT_S,
                                                    metadata=((HOST_METADATA, host),))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self._no_vm_service(host)
                    log.debug("host %s: its agent does not report its memory; placement treats it as unknown", host)
                    return
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise Unavailable(f"host {host}: {exc.details() or exc.code().name}") from None
                log.warning("host %s: GetHostResources failed: %s %s", host, exc.code().name, exc.details())
                return
            await asyncio.to_thread(self._record, host, reply)
        except Unavailable as exc:
            log.info("host %s: memory not learnt yet (%s); asking at its next report", host, exc.message)
            done = False
        except NotFound:
            pass   # removed meanwhile
        except asyncio.CancelledError:
            done = False
            raise
        except Exception:
            log.exception("host %s: learning its memory failed", host)
        finally:
            with self._lock:
                self._running.discard(host)
                if done:
                    self._due.discard(host)

    # -- the database ------------------------------------------------------------------------

    def _host(self, host: str) -> HostRecord:
        with self._pool.connection() as conn:
            return host_store.get_host(conn, host)

    def _record(self, host: str, reply: vm_pb2.HostResources) -> int | None:
        with self._lock:
            self._offers[host] = (frozenset(reply.virtual_networks),
                                  frozenset(reply.network_filters) if reply.network_filters_known else None)
        if not reply.memory_total_mib:
            return None
        with self._pool.connection() as conn:
            host_store.set_memory(conn, host, reply.memory_total_mib)
        log.info("host %s has %d MiB of memory", host, reply.memory_total_mib)
        return reply.memory_total_mib
