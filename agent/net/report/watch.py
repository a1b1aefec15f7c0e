"""Push the host's network state to whoever listens, whenever the kernel changes it.

The manager wants to know about drift as it happens, not at its next poll.
Events themselves are not forwarded: a netlink event says little on its own,
can be lost when the socket overflows, and a burst (a bridge with ten ports
going down) would become ten messages. Instead any event, after a short quiet
period that coalesces the burst, triggers one full read. Consumers therefore
always hold a complete, consistent state, and a slow consumer simply skips
to the newest one.

On the wire (`stream()`) a consumer gets one full snapshot, then only deltas
computed from the state it was last sent (virtfleet.netdelta). Every read has
a sequence number shared by all consumers of this watcher, under an epoch that
changes when the agent restarts; the watcher keeps its last few states, so a
consumer that reconnects with (epoch, sequence) gets just what it missed.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import TracebackType

from agent.net.netlink.dump import read_state
from agent.net.netlink.socket import (
    NETLINK_NO_ENOBUFS,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_LINK,
    SOL_NETLINK,
    open_rtnl_socket,
)
from virtfleet.hostnet import netdelta
from virtfleet.v1 import agent_pb2, netstate_pb2

log = logging.getLogger(__name__)

# Links (bridge port changes arrive here too), addresses and routes; not neighbours,
# whose constant churn would trigger reads that change nothing in the report.
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
# States kept for consumers that reconnect: enough for a manager restart or a
# network blip during a burst; beyond it a snapshot is as cheap as a delta.
HISTORY = 256


class WatcherStopped(Exception):
    """The watcher was stopped (or failed); no more states will come."""


class StreamSubscription:
    """One wire consumer: a snapshot (or a resume delta), then deltas from what it was last sent.

    Deltas are computed at take time against the newest state, so a slow
    consumer gets one delta covering everything it missed, never a queue.
    """

    def __init__(self, watcher: StateWatcher, resume_after: int, epoch: str) -> None:
        self._watcher = watcher
        self._resume_after = resume_after
        self._epoch = epoch
        self._sent: netstate_pb2.NetworkState | None = None
        self._sent_sequence = 0
        self.closed = False

    def get(self, timeout: float | None = None) -> agent_pb2.NetworkStateEvent:
        """The next event; TimeoutError if none within `timeout`, WatcherStopped when it is over."""
        w = self._watcher
        sequence, latest = w.newest(self._sent_sequence, timeout, cancelled=lambda: self.closed)
        base = self._sent
        if base is None and self._epoch == w.epoch:
            base = w.kept(self._resume_after)
        event = agent_pb2.NetworkStateEvent(sequence=sequence, epoch=w.epoch)
        if base is None:
            event.state.CopyFrom(latest)
        else:
            event.delta.CopyFrom(netdelta.diff(base, latest))
        self._sent, self._sent_sequence = latest, sequence
        return event

    def events(self, heartbeat_s: float | None = None) -> Iterator[agent_pb2.NetworkStateEvent]:
        """Events until the watcher stops; an empty delta after each `heartbeat_s` without one."""
        while True:
            try:
                yield self.get(heartbeat_s if self._sent is not None else None)
            except TimeoutError:
                yield self.heartbeat()
            except WatcherStopped:
                return

    def heartbeat(self) -> agent_pb2.NetworkStateEvent:
        """Nothing changed since the last event: says so, at the same sequence."""
        event = agent_pb2.NetworkStateEvent(sequence=self._sent_sequence, epoch=self._watcher.epoch)
        event.delta.SetInParent()
        return event

    def close(self) -> None:
        self.closed = True
        self._watcher.wake()


class StateWatcher:
    """Reads the state once, then again after every burst of kernel events, in one thread.

    `netns` opens the netlink sockets in a named namespace (tests, the lab);
    the agent itself runs inside its host's namespace and leaves it None.
    Nothing runs until `start()`.
    """

    def __init__(self, *, netns: str | None = None, quiet_period: float = 0.02) -> None:
        self._netns = netns
        self._quiet_period = quiet_period
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._latest: netstate_pb2.NetworkState | None = None
        self._sequence = 0
        self._history: OrderedDict[int, netstate_pb2.NetworkState] = OrderedDict()
        self._stopped = False
        self._ready = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.epoch = uuid.uuid4().hex

    def start(self) -> StateWatcher:
        """Start watching; returns once the first state has been read (or reading failed)."""
        self._thread = threading.Thread(target=self._run, name="net-state-watcher", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self.error is not None:
            raise WatcherStopped(f"the state watcher failed to start: {self.error}") from self.error
        return self

    def stream(self, resume_after: int = 0, epoch: str = "") -> StreamSubscription:
        """A wire consumer; it resumes when (epoch, resume_after) names a state still kept."""
        return StreamSubscription(self, resume_after, epoch)

    def newest(self, after: int, timeout: float | None = None, *,
               cancelled: Callable[[], bool] = lambda: False) -> tuple[int, netstate_pb2.NetworkState]:
        """(sequence, state) of the newest read once its sequence passes `after`.

        TimeoutError if none within `timeout`; WatcherStopped once the watcher
        stopped or `cancelled()` turned true (checked whenever `wake()` is called).
        """
        with self._changed:
            ready = self._changed.wait_for(
                lambda: cancelled() or self._stopped or (self._sequence > after and self._latest is not None), timeout)
            if not ready:
                raise TimeoutError("no network state change within the timeout")
            if cancelled() or self._stopped:
                raise WatcherStopped("the state watcher has stopped")
            assert self._latest is not None
            return self._sequence, self._latest

    def kept(self, sequence: int) -> netstate_pb2.NetworkState | None:
        """The state read as `sequence`, if it is still among the last HISTORY ones."""
        with self._lock:
            return self._history.get(sequence)

    def wake(self) -> None:
        """Waiters re-check their conditions (a consumer went away)."""
        with self._changed:
            self._changed.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the sockets, join the thread, and wake every waiting consumer."""
        if self._thread is not None and self._thread.is_alive():
            os.write(self._wake_write, b"x")
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the state watcher thread did not stop")
        self._finish()
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed by an earlier stop()

    def __enter__(self) -> StateWatcher:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _publish(self, state: netstate_pb2.NetworkState) -> None:
        with self._changed:
            if self._latest is not None and _same(self._latest, state):
                return
            self._latest = state
            self._sequence += 1
            self._history[self._sequence] = state
            while len(self._history) > HISTORY:
                self._history.popitem(last=False)
            self._changed.notify_all()

    def _finish(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _run(self) -> None:
        events: socket.socket | None = None
        try:
            events = self._events_socket()
            self._publish(read_state(self._netns))
            self._ready.set()
            while True:
                try:
                    if not self._wait_for_burst(events):
                        break
                except OSError as error:
                    # A fresh socket and a full read lose nothing that matters.
                    log.warning("network event socket failed (%s); reopening it", error)
                    events.close()
                    events = self._events_socket()
                self._publish(read_state(self._netns))
        except BaseException as error:  # reported through .error and WatcherStopped
            log.exception("network state watcher failed")
            self.error = error
        finally:
            if events is not None:
                events.close()
            self._ready.set()
            self._finish()

    def _wait_for_burst(self, events: socket.socket) -> bool:
        """Block until an event, then until `quiet_period` passes; False when asked to stop."""
        if not self._wait(events, None):
            return False
        deadline = time.monotonic() + self._quiet_period
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._wait(events, remaining):
                return False
        return True

    def _wait(self, events: socket.socket, timeout: float | None) -> bool:
        readable, _, _ = select.select([events.fileno(), self._wake_read], [], [], timeout)
        if self._wake_read in readable:
            return False
        if readable:
            _drain(events)  # the content does not matter: the full read that follows does
        return True

    def _events_socket(self) -> socket.socket:
        """A raw rtnetlink socket on the change groups, made in the namespace without forking.

        (pyroute2 forks a helper to open a socket in another namespace, which a
        process running gRPC threads must not do.)
        """
        events = open_rtnl_socket(self._netns, rcvbuf=1 << 20, groups=GROUPS)
        try:
            # Overflow would report ENOBUFS; dropped events cost nothing here, the full read sees them.
            events.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            events.setblocking(False)
        except BaseException:
            events.close()
            raise
        return events


def _drain(events: socket.socket) -> None:
    while True:
        try:
            events.recv(1 << 16)
        except BlockingIOError:
            return


def _same(a: netstate_pb2.NetworkState, b: netstate_pb2.NetworkState) -> bool:
    """Equal apart from when they were taken: an event that changed nothing is not news."""
    return _untimed(a) == _untimed(b)


def _untimed(state: netstate_pb2.NetworkState) -> netstate_pb2.NetworkState:
    copy = netstate_pb2.NetworkState()
    copy.CopyFrom(state)
    copy.ClearField("taken_at")
    return copy
