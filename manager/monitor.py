"""Keeps each host's stored network report current from its agent's stream.

One thread per host follows WatchNetworkState; every event replaces the stored
report and stamps the host's last report time. A lost stream marks the host
unreachable and is retried with capped backoff.
"""
from __future__ import annotations

import logging
import threading

import grpc
from google.protobuf.json_format import MessageToDict
from psycopg_pool import ConnectionPool

from virtfleet.v1 import agent_pb2

from . import errors
from .agents import AgentClients
from .store import hosts as host_store

log = logging.getLogger(__name__)


class HostMonitor:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._agents = agents
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._lock = threading.Lock()

    def start_all(self) -> None:
        with self._pool.connection() as conn:
            for host in host_store.list_hosts(conn):
                self.watch(host.name, host.endpoint)

    def watch(self, name: str, endpoint: str) -> None:
        with self._lock:
            if name in self._threads:
                return
            stop = threading.Event()
            t = threading.Thread(target=self._follow, args=(name, endpoint, stop), name=f"monitor-{name}", daemon=True)
            self._threads[name] = (t, stop)
            t.start()

    def unwatch(self, name: str) -> None:
        with self._lock:
            entry = self._threads.pop(name, None)
        if entry:
            entry[1].set()

    def stop(self) -> None:
        with self._lock:
            entries = list(self._threads.values())
            self._threads.clear()
        for _, stop in entries:
            stop.set()

    def _follow(self, name: str, endpoint: str, stop: threading.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            stream = None
            try:
                stream = self._agents.stub(name, endpoint).WatchNetworkState(agent_pb2.WatchNetworkStateRequest())
                stop_cancels = threading.Thread(target=lambda: (stop.wait(), stream.cancel()), daemon=True)
                stop_cancels.start()
                for event in stream:
                    self._store(name, event)
                    backoff = 0.2
            except grpc.RpcError as exc:
                if stop.is_set():
                    return
                log.info("lost the state stream of host %s: %s", name, exc.code())
            except errors.NotFound:
                return  # the host was removed while we watched it
            if stop.is_set():
                return
            self._mark_unreachable(name)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _store(self, name: str, event: agent_pb2.NetworkStateEvent) -> None:
        state = MessageToDict(event.state, preserving_proto_field_name=True)
        with self._pool.connection() as conn:
            host_store.save_report(conn, name, event.sequence, state)

    def _mark_unreachable(self, name: str) -> None:
        try:
            with self._pool.connection() as conn:
                host_store.set_status(conn, name, "unreachable")
        except Exception:  # the database being down must not kill the monitor thread
            log.exception("cannot mark host %s unreachable", name)
