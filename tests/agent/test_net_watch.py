"""The watcher pushes a full state first, then a fresh one after each burst of kernel changes."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from agent.net.report.watch import StateWatcher, WatcherStopped
from tests.agent.watch_subscription import subscribe
from tests.fixtures.netns import Namespace
from virtfleet.v1 import netstate_pb2

pytestmark = pytest.mark.lab


def _names(state: netstate_pb2.NetworkState) -> list[str]:
    return [link.name for link in state.links]


def _until(subscription: object, predicate: object, timeout: float = 5.0) -> tuple[int, netstate_pb2.NetworkState]:
    deadline = time.monotonic() + timeout
    while True:
        sequence, state = subscription.get(timeout=max(deadline - time.monotonic(), 0.01))  # type: ignore[attr-defined]
        if predicate(state):  # type: ignore[operator]
            return sequence, state


def test_first_state_is_the_whole_host(netns: Namespace) -> None:
    netns.ip("link", "add", "br0", "type", "bridge")
    with StateWatcher(netns=netns.name) as watcher:
        sequence, state = subscribe(watcher).get(timeout=5)
    assert sequence == 1
    assert _names(state) == [j["ifname"] for j in netns.ip_json("link", "show")]


def test_a_change_brings_a_new_full_state(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        subscription = subscribe(watcher)
        subscription.get(timeout=5)
        netns.ip("link", "add", "br0", "type", "bridge")
        sequence, state = _until(subscription, lambda s: "br0" in _names(s))
        netns.ip("addr", "add", "192.0.2.5/24", "dev", "br0")
        _, state = _until(subscription, lambda s: any(a.address == "192.0.2.5" for l in s.links for a in l.addresses))
    assert sequence == 2
    assert "lo" in _names(state)


def test_a_burst_of_changes_is_coalesced(netns: Namespace) -> None:
    batch = "".join(f"link add b{i} type bridge\n" for i in range(40))
    with StateWatcher(netns=netns.name, quiet_period=0.05) as watcher:
        subscription = subscribe(watcher)
        subscription.get(timeout=5)
        subprocess.run(["ip", "-n", netns.name, "-batch", "-"], input=batch, text=True, check=True)
        sequence, state = _until(subscription, lambda s: len(s.links) == 41)
    assert sequence <= 4  # 40 kernel events, a handful of reads at most


def test_a_slow_consumer_skips_to_the_newest_state(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        subscription = subscribe(watcher)
        for i in range(3):
            netns.ip("link", "add", f"b{i}", "type", "bridge")
            time.sleep(0.2)
        sequence, state = subscription.get(timeout=5)
    assert (sequence, _names(state)) == (1, ["lo", "b0", "b1", "b2"])


def test_stop_ends_subscriptions_and_releases_everything(netns: Namespace) -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    watcher = StateWatcher(netns=netns.name).start()
    subscription = subscribe(watcher)
    subscription.get(timeout=5)
    waiter_saw: list[BaseException] = []

    def wait() -> None:
        try:
            subscription.get(timeout=10)
        except BaseException as error:  # recorded for the assertion below
            waiter_saw.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    watcher.stop()
    waiter.join(5)

    assert not waiter.is_alive() and isinstance(waiter_saw[0], WatcherStopped)
    assert not [t for t in threading.enumerate() if t.name == "net-state-watcher"]
    assert set(os.listdir("/proc/self/fd")) <= fds_before
    with pytest.raises(WatcherStopped):
        subscribe(watcher).get(timeout=1)
