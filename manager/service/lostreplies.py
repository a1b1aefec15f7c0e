"""A host network change whose reply was lost, recorded as the agent has it at the agent's next report.

An agent killed after it saved a change but before it replied leaves the host
and its saved configuration changed and the manager's record not. The agent's
saved configuration has a generation that grows by one with every saved
change, and every event of its state stream carries it (snapshots and
heartbeats alike): the manager learns it from the report it follows anyway,
with no extra call per host. The agent guarantees its configuration is
exactly the before- or the after-state of the change (agent.net.hostnet.changes).

When a change call fails without a reply (UNAVAILABLE: the connection went or
no answer came in time), the service notes the host's stream position as it
was when the call went out (epoch, generation) and the names the request
touched. At each next event of that host (`decide`):

- the generation moved: the agent saved a change since; the manager reads the
  agent's configuration (GetNetworkConfig) and, for the names the request
  touched, records what the agent has: attached as the agent has it, detached
  where it has none (`mirror`). That is the change if it was made, and the
  record as it was if not;
- another epoch with the same generation: the agent restarted and kept
  nothing: the change was undone, the record stands;
- the same agent, same generation: it may still be working; wait.

What is recorded changes what the host is judged by (its required networks,
service/operational.py): `recorded` is called after each such record, as every
other path that records a host's networks does (NetworkService passes its
re-judging there).

Notes live in memory. A manager restarted with a note pending leaves the
difference to what `host networks` and the audit already show (they compare
the record with the host's state).
"""
from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from virtfleet.errors import VirtfleetError
from virtfleet.v1 import agent_pb2, hostnet_pb2

from ..agents import AgentClients, HostMonitor
from ..agents.states import HostState
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.networks import AttachmentRecord, BondRecord, NetworkRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """Where the host's state stream was: its agent's run (epoch) and saved-configuration generation."""

    epoch: str
    generation: int


@dataclass(frozen=True)
class Note:
    """A change sent to a host without a reply: where its stream was, and the names it touched."""

    sent_at: Position | None  # None: the monitor held nothing of the host; read at the next report
    networks: frozenset[str]
    bonds: frozenset[str]


class Outcome(enum.Enum):
    READ = "read"            # something was saved since: read the agent's configuration
    UNCHANGED = "unchanged"  # the agent restarted without saving: nothing to record
    WAIT = "wait"            # the same agent, nothing saved yet


def decide(note: Note, now: Position) -> Outcome:
    if note.sent_at is None or now.generation != note.sent_at.generation:
        return Outcome.READ
    if now.epoch != note.sent_at.epoch:
        return Outcome.UNCHANGED
    return Outcome.WAIT


@dataclass(frozen=True)
class Mirror:
    upsert: list[tuple[NetworkRecord, AttachmentRecord]]
    detach: list[NetworkRecord]
    bonds_upsert: list[BondRecord]
    bonds_remove: list[str]


def mirror(note: Note, config: hostnet_pb2.HostNetworkConfig, networks: dict[str, NetworkRecord],
           recorded: Iterable[str], recorded_bonds: Iterable[str]) -> Mirror:
    """The record change that makes the touched names what the agent has (pure)."""
    held = {a.network: a for a in config.networks}
    held_bonds = {b.name: b for b in config.bonds}
    upsert = [(networks[name], _attachment(held[name])) for name in sorted(note.networks)
              if name in held and name in networks]
    detach = [networks[name] for name in sorted(note.networks & set(recorded))
              if name not in held and name in networks]
    bonds_upsert = [BondRecord(b.name, list(b.slaves), b.mode, dict(b.options))
                    for name in sorted(note.bonds) if (b := held_bonds.get(name)) is not None]
    bonds_remove = sorted(name for name in note.bonds & set(recorded_bonds) if name not in held_bonds)
    return Mirror(upsert, detach, bonds_upsert, bonds_remove)


def _attachment(a: hostnet_pb2.NetworkAttachment) -> AttachmentRecord:
    ipv4 = a.ipv4
    return AttachmentRecord(a.network, a.nic, (ipv4.method or "none").lower(), ipv4.address or None,
                            ipv4.prefixlen or None, ipv4.gateway or None, a.default_route)


class LostReplies:
    """The notes, and the reconciliation the host's next report triggers (on a thread of its own)."""

    def __init__(self, pool: ConnectionPool, agents: AgentClients, monitor: HostMonitor | None,
                 record_system: Callable[..., None] | None = None, recorded: Callable[[], None] | None = None) -> None:
        self._pool, self._agents, self._monitor = pool, agents, monitor
        self._recorded = recorded or (lambda: None)   # the host's networks were recorded anew: judge it again
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self._notes: dict[str, Note] = {}
        self._lock = threading.Lock()
        if monitor is not None:
            monitor.add_listener(self._heard)

    def position(self, host: str) -> Position | None:
        """Where the host's stream is now: taken before a change call goes out."""
        held = self._monitor.current(host) if self._monitor is not None else None
        return Position(held.epoch, held.config_generation) if held is not None else None

    def note(self, host: str, sent_at: Position | None, networks: Iterable[str], bonds: Iterable[str] = ()) -> None:
        """A change call to `host` ended without a reply; its outcome is recorded at the next report."""
        if self._monitor is None:
            return
        with self._lock:
            previous = self._notes.get(host)
            touched = Note(sent_at if previous is None else previous.sent_at, frozenset(networks), frozenset(bonds))
            if previous is not None:  # two lost replies in a row: mirror everything either touched
                touched = Note(touched.sent_at, touched.networks | previous.networks, touched.bonds | previous.bonds)
            self._notes[host] = touched
        log.warning("host %s: no reply to a network change; its outcome is recorded at the agent's next report", host)

    def pending(self, host: str) -> Note | None:
        with self._lock:
            return self._notes.get(host)

    def _heard(self, state: HostState, event: agent_pb2.NetworkStateEvent) -> None:
        """On the monitor's loop: must be quick, so the reading is done on a thread."""
        with self._lock:
            note = self._notes.get(state.name)
            if note is None:
                return
            outcome = decide(note, Position(state.epoch, state.config_generation))
            if outcome is Outcome.WAIT:
                return
            del self._notes[state.name]
        if outcome is Outcome.UNCHANGED:
            log.info("host %s: its agent restarted without saving the change whose reply was lost: not made",
                     state.name)
            self._record_system("network.rolled_back", "host", state.name,
                                {"networks": sorted(note.networks), "bonds": sorted(note.bonds)},
                                "the agent restarted without saving the unconfirmed change: not made")
            return
        threading.Thread(target=self._reconcile, args=(state.name, note), name=f"lost-reply-{state.name}",
                         daemon=True).start()

    def _reconcile(self, host_name: str, note: Note) -> None:
        try:
            with self._pool.connection() as conn:
                host = host_store.get_host(conn, host_name)
            config = self._agents.call(host.name, host.endpoint, lambda stub, t: stub.GetNetworkConfig(
                hostnet_pb2.GetNetworkConfigRequest(), timeout=t))
            with self._pool.connection() as conn, conn.transaction():
                host = host_store.get_host(conn, host_name, lock=True)
                networks = {n.name: n for n in net_store.list_networks(conn, host.datacenter)}
                recorded = [a.network for a in net_store.attachments(conn, host.id)]
                recorded_bonds = [b.name for b in net_store.bonds(conn, host.id)]
                change = mirror(note, config, networks, recorded, recorded_bonds)
                net_store.record_host_change(conn, host.id, upsert=change.upsert, detach=change.detach,
                                             bonds_upsert=change.bonds_upsert, bonds_remove=change.bonds_remove)
            self._recorded()
            log.warning("host %s: recorded the outcome of the change whose reply was lost, as its agent has it "
                        "(generation %d): %s", host_name, config.generation,
                        ", ".join(sorted(n.name for n, _ in change.upsert)) or "nothing attached")
            self._record_system("network.outcome_recorded", "host", host_name,
                                {"generation": config.generation,
                                 "attached": sorted(n.name for n, _ in change.upsert),
                                 "detached": sorted(n.name for n in change.detach),
                                 "bonds": sorted(b.name for b in change.bonds_upsert),
                                 "bonds_removed": list(change.bonds_remove)},
                                "the outcome of an unconfirmed change, recorded as the agent has it")
        except VirtfleetError as error:
            log.warning("host %s: could not learn the outcome of a lost change (%s); retrying at its next report",
                        host_name, error)
            with self._lock:
                self._notes.setdefault(host_name, Note(None, note.networks, note.bonds))
        except Exception:
            log.exception("host %s: reconciling a lost change failed", host_name)
