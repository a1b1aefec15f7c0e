"""Required networks: a host that lacks one, or carries it out of sync, is non-operational.

Judged at once from every event of the host's stream (a monitor listener, on the
monitor's loop), not on a timer: the verdict is a pure comparison of the host's
current state with the required networks it is recorded to carry, by
virtfleet.netcompare — the comparison `host networks` and the audit use, so
"out of sync" means the same thing everywhere. Only a changed verdict goes to
the database (status and status_reason, one statement) and to the audit trail
(host.non_operational / host.operational), on one worker thread so the loop
never waits and the verdicts are written in the order they were reached.

Which networks count: the required networks of the host's cluster that the host
is recorded to carry (setup-networks, setup-management, labels). A host not yet
given a required network is not judged on it — an enrolled host's networks are
set up after it is enrolled, and it must be up for that. The recorded
attachments are read from the database (`refresh`) after every change to them
or to the clusters' required networks, and then every held host is judged again.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet.errors import NotFound
from virtfleet.hostnet.netcompare import compare_attachment
from virtfleet.v1 import agent_pb2, hostnet_pb2, netstate_pb2

from ..agents import HostMonitor
from ..agents.states import HostState
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.networks import AttachmentRecord, NetworkRecord

log = logging.getLogger(__name__)

_NOTHING_REQUIRED: tuple[hostnet_pb2.NetworkAttachment, ...] = ()   # one object: heartbeats compare by identity

AgentAttachment = Callable[[NetworkRecord, AttachmentRecord], hostnet_pb2.NetworkAttachment]


def verdict(required: Sequence[hostnet_pb2.NetworkAttachment], state: netstate_pb2.NetworkState) -> str:
    """'' when every required network is present and in sync; else the reason, naming each that is not."""
    links = {link.name: link for link in state.links}
    reasons = []
    for att in sorted(required, key=lambda a: a.network):
        diffs = compare_attachment(att, state, links)
        if not diffs:
            continue
        missing = diffs[0].found == "missing"
        detail = ", ".join(f"{d.field}: expected {d.expected}, found {d.found}" for d in diffs[:3])
        reasons.append(f"required network {att.network} {'is missing' if missing else 'is out of sync'} ({detail})")
    return "; ".join(reasons)


def refusal(conn: psycopg.Connection, host: str, cluster: str) -> str:
    """Why placement may not use the named host (it is not among the cluster's up hosts)."""
    try:
        record = host_store.get_host(conn, host)
    except NotFound:   # said below as for any host outside the cluster
        record = None
    if record is not None and record.cluster == cluster and record.status == "non-operational":
        return f"host {host} is non-operational: {record.status_reason}"
    return f"host {host!r} is not up in cluster {cluster}"


class OperationalCheck:
    def __init__(self, pool: ConnectionPool, monitor: HostMonitor | None, agent_attachment: AgentAttachment,
                 record_system: Callable[..., None] | None = None) -> None:
        self._pool = pool
        self._monitor = monitor
        self._agent_attachment = agent_attachment
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self._lock = threading.Lock()
        self._required: dict[str, list[hostnet_pb2.NetworkAttachment]] | None = None   # None: not read yet
        self._verdicts: dict[str, str] = {}                    # host → the verdict last sent to the database
        self._judged: dict[str, tuple[object, object]] = {}    # host → (state, required) last judged, held
        self._loading = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="operational")   # threads on first use
        if monitor is not None:
            monitor.add_listener(self._heard)

    # -- what services call ----------------------------------------------------------------

    def refresh(self) -> None:
        """Read the required attachments again and judge every held host (after a change to either)."""
        with self._pool.connection() as conn:
            rows = net_store.required_attachments(conn)
        required: dict[str, list[hostnet_pb2.NetworkAttachment]] = {}
        for r in rows:
            required.setdefault(r.host, []).append(self._agent_attachment(r.network, r.attachment))
        with self._lock:
            self._required = required
            self._loading = False
        held = self._monitor.snapshot() if self._monitor is not None else {}
        for state in held.values():
            self._judge(state)

    def forget(self, host: str) -> None:
        """A removed host: a host enrolled again under its name is judged afresh."""
        with self._lock:
            self._verdicts.pop(host, None)
            self._judged.pop(host, None)

    def forget_all(self) -> None:
        """Read the required networks again at the next event (a refresh failed)."""
        with self._lock:
            self._required = None
            self._loading = False

    def wait_written(self) -> None:
        """Return once the verdicts reached so far are written (tests)."""
        self._writer.submit(lambda: None).result()

    # -- the monitor's side ------------------------------------------------------------------

    def _heard(self, state: HostState, event: agent_pb2.NetworkStateEvent) -> None:
        """On the monitor's loop: a few comparisons; the database is written on the worker."""
        with self._lock:
            if self._required is None:
                if not self._loading:
                    self._loading = True
                    self._writer.submit(self._load)
                return
        self._judge(state)

    def _judge(self, state: HostState) -> None:
        with self._lock:
            if self._required is None:
                return
            required = self._required.get(state.name, _NOTHING_REQUIRED)
            last = self._judged.get(state.name)
            if last is not None and last[0] is state.state and last[1] is required and state.name in self._verdicts:
                return   # a heartbeat: nothing to compare again
            self._judged[state.name] = (state.state, required)
            reason = verdict(required, state.state)
            if self._verdicts.get(state.name) == reason:
                return
            self._verdicts[state.name] = reason
        self._writer.submit(self._write, state.name, reason)

    def _load(self) -> None:
        try:
            self.refresh()
        except Exception as exc:   # the database away: the next event tries again
            log.warning("could not read the hosts' required networks (%s); retrying at the next report", exc)
            with self._lock:
                self._loading = False

    def _write(self, host: str, reason: str) -> None:
        try:
            with self._pool.connection() as conn:
                change = host_store.set_operational(conn, host, reason)
        except Exception as exc:
            log.warning("could not record whether host %s is operational (%s); retrying at its next report",
                        host, exc)
            with self._lock:
                if self._verdicts.get(host) == reason:
                    del self._verdicts[host]
            return
        if change is None or change.old_reason == change.reason:
            return
        if reason:
            log.warning("host %s is non-operational: %s", host, reason)
            self._record_system("host.non_operational", "host", host, {"reason": reason, "status": change.status},
                                reason)
        else:
            log.info("host %s carries its required networks again: operational", host)
            self._record_system("host.operational", "host", host, {"was": change.old_reason, "status": change.status},
                                "every required network is present and in sync again")
