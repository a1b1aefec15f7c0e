"""Deciding which watched hosts have gone silent: unreachable after `limit_s` without a report.

Agents heartbeat at a third of the limit, so a host that is up never gets near
it. A host that never reported at all counts from when it was first checked.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .states import HostStates

log = logging.getLogger(__name__)


class Reachability:
    def __init__(self, states: HostStates, watched: Callable[[], set[str]], on_unreachable: Callable[[str], None],
                 limit_s: float) -> None:
        self._states = states
        self._watched = watched
        self._on_unreachable = on_unreachable
        self.limit_s = limit_s
        self._unreachable: set[str] = set()
        self._never_reported_since: dict[str, float] = {}

    def is_unreachable(self, name: str) -> bool:
        return name in self._unreachable

    def heard(self, name: str) -> None:
        self._unreachable.discard(name)

    def forget(self, name: str) -> None:
        self._unreachable.discard(name)
        self._never_reported_since.pop(name, None)

    def check(self, now: float) -> None:
        limit = now - self.limit_s
        watched = self._watched()
        for name, host in self._states.snapshot().items():
            if host.reachable and host.reported_mono < limit and name in watched:
                log.warning("host %s has not reported for %.0f s: unreachable", name, self.limit_s)
                self._states.mark_unreachable(name)
                self._mark(name)
        for name in watched:
            if self._states.current(name) is None and name not in self._unreachable:
                if self._never_reported_since.setdefault(name, now) < limit:
                    self._mark(name)

    def _mark(self, name: str) -> None:
        self._unreachable.add(name)
        self._on_unreachable(name)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.limit_s / 4))
            self.check(time.monotonic())
