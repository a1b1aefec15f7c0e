"""When a host catches up with its labels: the first report heard of it, and every report after it was away.

A label change reaches only the hosts that answer at that moment; one that was
unreachable, restarting, or not yet enrolled (`host add --nic-label`) must get
its labelled networks by itself. The monitor tells this listener of every event
of every host's stream; a host is *due* when it (re)appears:

- the first event heard of it (just enrolled, or the manager just started), and
  every snapshot (a stream that could not resume: the manager lost track of it —
  a host removed and enrolled again is followed from a snapshot);
- another agent run (a new epoch: the agent restarted, and a call may have
  failed while it was down);
- the first event after a silence at least as long as the unreachable limit;
- or a label change found it unreachable (`due`).

A due host is caught up on a worker thread (LabelService.catch_up: one
setupNetworks for what is missing, quiet when nothing is), never on the
monitor's loop, one run per host at a time. While a change whose reply was lost
is pending for the host (service/lostreplies.py), it waits for the next event:
the record must first say what the host has. A host still unreachable stays due
and is tried again at its next event; anything else ends its turn (a refusal is
an event, not a loop).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from virtfleet.errors import Unavailable
from virtfleet.v1 import agent_pb2

from ..agents import HostMonitor
from ..agents.states import HostState

log = logging.getLogger(__name__)

CatchUp = Callable[[str, Collection[str]], object]


@dataclass(frozen=True)
class Heard:
    """One event of a host's stream: which agent run sent it, and when (monotonic seconds)."""

    epoch: str
    at: float


def came_back(previous: Heard | None, now: Heard, silent_limit_s: float, *, snapshot: bool = False) -> bool:
    """Whether this event shows a host (re)appearing: first heard, a snapshot, another agent run, or the
    first event after a silence."""
    return (snapshot or previous is None or previous.epoch != now.epoch
            or now.at - previous.at >= silent_limit_s)


class LabelCatchUp:
    def __init__(self, monitor: HostMonitor, catch_up: CatchUp, pending_lost_reply: Callable[[str], object]) -> None:
        self._monitor = monitor
        self._catch_up = catch_up
        self._pending_lost_reply = pending_lost_reply
        self._lock = threading.Lock()
        self._heard: dict[str, Heard] = {}
        self._due: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()   # due again while running: stays due when the run ends
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="label-catch-up")   # threads on use
        monitor.add_listener(self._event)

    def due(self, host: str) -> None:
        """Catch `host` up at its next event (a label change could not reach it)."""
        with self._lock:
            self._due.add(host)
            if host in self._running:
                self._again.add(host)

    def idle(self, host: str) -> bool:
        """Neither due nor running (tests)."""
        with self._lock:
            return host not in self._due and host not in self._running

    # -- the monitor's side ------------------------------------------------------------------

    def _event(self, state: HostState, event: agent_pb2.NetworkStateEvent) -> None:
        """On the monitor's loop: a comparison, and for a due host a task handed to a worker."""
        name = state.name
        now = Heard(state.epoch, state.reported_mono)
        with self._lock:
            back = came_back(self._heard.get(name), now, self._monitor.unreachable_after_s,
                             snapshot=event.HasField("state"))
            self._heard[name] = now
            if back:
                self._due.add(name)
                if name in self._running:
                    self._again.add(name)
            if name not in self._due or name in self._running or self._pending_lost_reply(name) is not None:
                return
            self._running.add(name)
        links = frozenset(link.name for link in state.state.links)
        self._workers.submit(self._run, name, links)

    def _run(self, host: str, links: frozenset[str]) -> None:
        done = True
        try:
            self._catch_up(host, links)
        except Unavailable as exc:   # the host (or the database) went again: its next event tries again
            log.info("host %s: labelled networks not caught up yet (%s); trying at its next report", host, exc)
            done = False
        except Exception:
            log.exception("host %s: catching up with its labelled networks failed", host)
        finally:
            with self._lock:
                self._running.discard(host)
                if done and host not in self._again:
                    self._due.discard(host)
                self._again.discard(host)
