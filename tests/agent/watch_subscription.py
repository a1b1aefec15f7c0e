"""A consumer of StateWatcher that takes whole states, for tests that look at full reads rather than deltas.

The agent itself streams deltas (StreamSubscription); only tests want "the
newest full state, numbered 1, 2, 3… per consumer", so that view lives here.
Holding only the newest state bounds memory whatever the consumer's speed.
"""
from __future__ import annotations

from collections.abc import Iterator

from agent.net.report.watch import StateWatcher, WatcherStopped
from virtfleet.v1 import netstate_pb2


class Subscription:
    """Its first state is the watcher's current one; each later one the newest read since the last taken."""

    def __init__(self, watcher: StateWatcher) -> None:
        self._watcher = watcher
        self._seen = 0        # the watcher's sequence of the last state taken
        self._sequence = 0    # this consumer's own count

    def get(self, timeout: float | None = None) -> tuple[int, netstate_pb2.NetworkState]:
        """The next state; TimeoutError if none within `timeout`, WatcherStopped when it is over."""
        self._seen, state = self._watcher.newest(self._seen, timeout)
        self._sequence += 1
        return self._sequence, state

    def __iter__(self) -> Iterator[tuple[int, netstate_pb2.NetworkState]]:
        while True:
            try:
                yield self.get()
            except WatcherStopped:
                return


def subscribe(watcher: StateWatcher) -> Subscription:
    return Subscription(watcher)
