"""On the wire the watcher sends one snapshot, then deltas; a consumer that reconnects resumes."""

from __future__ import annotations

import time

import pytest

from agent.net.report.watch import StateWatcher, WatcherStopped
from tests.fixtures.netns import Namespace
from virtfleet.hostnet import netdelta
from virtfleet.v1 import agent_pb2, netstate_pb2

pytestmark = pytest.mark.lab


class Follower:
    """What the manager does with the events: hold the state, apply each delta."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.state = netstate_pb2.NetworkState()
        self.sequence = 0
        self.kinds: list[str] = []

    def take(self, timeout: float = 5.0) -> agent_pb2.NetworkStateEvent:
        event = self.stream.get(timeout=timeout)
        kind = "state" if event.HasField("state") else "delta"
        self.kinds.append(kind)
        self.state = event.state if kind == "state" else netdelta.apply_delta(self.state, event.delta)
        self.sequence = event.sequence
        return event

    def until(self, predicate, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.state):
            self.take(timeout=max(deadline - time.monotonic(), 0.01))


def _links(state: netstate_pb2.NetworkState) -> dict[str, netstate_pb2.Link]:
    return {link.name: link for link in state.links}


def test_snapshot_then_deltas_that_rebuild_the_kernel_state(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        follower = Follower(watcher.stream())
        first = follower.take()
        assert first.HasField("state") and first.sequence == 1
        netns.ip("link", "add", "br0", "type", "bridge")
        netns.ip("tuntap", "add", "dev", "tap0", "mode", "tap")
        netns.ip("link", "set", "tap0", "master", "br0")
        netns.ip("link", "set", "br0", "mtu", "1400", "up")
        netns.ip("addr", "add", "192.0.2.5/24", "dev", "br0")
        follower.until(lambda s: "br0" in _links(s) and _links(s)["br0"].mtu == 1400
                       and list(_links(s)["br0"].bridge.ports) == ["tap0"]
                       and any(a.address == "192.0.2.5" for a in _links(s)["br0"].addresses))
        netns.ip("link", "del", "tap0")
        follower.until(lambda s: "tap0" not in _links(s) and not _links(s)["br0"].bridge.ports)
        netns.settle()
        with netns.iproute() as ipr:
            from agent.net.report.state import read_state
            truth = read_state(ipr)
        follower.until(lambda s: [l.name for l in s.links] == [l.name for l in truth.links])
    assert set(follower.kinds[1:]) == {"delta"}
    assert [l.name for l in follower.state.links] == [l.name for l in truth.links]
    assert _links(follower.state)["br0"].mtu == 1400


def test_a_delta_carries_only_what_changed(netns: Namespace) -> None:
    netns.ip("link", "add", "br0", "type", "bridge")
    netns.ip("link", "add", "br1", "type", "bridge")
    with StateWatcher(netns=netns.name) as watcher:
        follower = Follower(watcher.stream())
        follower.take()
        netns.ip("link", "set", "br1", "mtu", "1300")
        event = follower.take()
    assert [l.name for l in event.delta.changed_links] == ["br1"]
    assert not event.delta.removed_link_indexes


def test_reconnect_with_the_last_sequence_gets_only_the_missed_changes(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        first = Follower(watcher.stream())
        first.take()
        held, sequence = first.state, first.sequence
        first.stream.close()
        netns.ip("link", "add", "br7", "type", "bridge")
        time.sleep(0.1)  # let the change land while nobody listens; nothing is asserted on timing
        resumed = Follower(watcher.stream(sequence, watcher.epoch))
        resumed.state = held
        event = resumed.take()
        resumed.until(lambda s: "br7" in _links(s))
    assert event.HasField("delta")
    assert "br7" in _links(resumed.state)


def test_reconnect_to_another_epoch_gets_a_snapshot(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        event = watcher.stream(1, "an-agent-that-restarted").get(timeout=5)
    assert event.HasField("state") and event.epoch == watcher.epoch


def test_resuming_in_sync_gets_an_empty_delta_at_once(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        event = watcher.stream().get(timeout=5)
        again = watcher.stream(event.sequence, event.epoch).get(timeout=5)
    assert again.HasField("delta") and netdelta.is_empty(again.delta)
    assert again.sequence == event.sequence


def test_stop_ends_wire_streams(netns: Namespace) -> None:
    watcher = StateWatcher(netns=netns.name).start()
    stream = watcher.stream()
    stream.get(timeout=5)
    watcher.stop()
    with pytest.raises(WatcherStopped):
        stream.get(timeout=1)


def test_diff_and_apply_round_trip_pure() -> None:
    old = netstate_pb2.NetworkState(hostname="h", links=[
        netstate_pb2.Link(index=1, name="lo", mtu=65536),
        netstate_pb2.Link(index=2, name="eth0", mtu=1500),
    ], routes=[netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1", device="eth0")])
    new = netstate_pb2.NetworkState(hostname="h", links=[
        netstate_pb2.Link(index=1, name="lo", mtu=65536),
        netstate_pb2.Link(index=3, name="br0", kind="bridge", mtu=1500),
    ], routes=[netstate_pb2.Route(family="inet", destination="default", gateway="192.0.2.1", device="br0")])
    delta = netdelta.diff(old, new)
    assert list(delta.removed_link_indexes) == [2] and [l.name for l in delta.changed_links] == ["br0"]
    assert netdelta.apply_delta(old, delta) == new
    assert netdelta.is_empty(netdelta.diff(new, new))


def test_a_quiet_host_sends_empty_heartbeats_at_its_last_sequence(netns: Namespace) -> None:
    with StateWatcher(netns=netns.name) as watcher:
        events = watcher.stream().events(heartbeat_s=0.05)
        first = next(events)
        beat = next(events)
    assert first.HasField("state")
    assert beat.HasField("delta") and netdelta.is_empty(beat.delta) and beat.sequence == first.sequence
