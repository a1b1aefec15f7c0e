"""System events and `virtfleet events`, against a real manager in the test process."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import psycopg
from click.testing import CliRunner

from agent.sim.fleet import FleetSimulator
from manager.cli.main import cli
from manager.macpool.ranges import MacRange
from manager.service import macpools
from manager.service.macpools import allocate_macs
from manager.store.events import EventFilter
from tests.fixtures.agent_process import simulated_fleet_material
from tests.fixtures.lab import eventually
from virtfleet.v1 import events_pb2, events_pb2_grpc, fleet_pb2

BASE = 0x02_00_00_00_10_00


def _events(manager, **f):
    manager.app.events.flush()
    return manager.app.event_log.list(EventFilter(**f))


def test_a_mac_pool_running_low_then_empty_is_an_event_once_per_crossing(manager):
    macpools.forget_cache()
    manager.app.macpools.create(name="small", datacenter="", ranges=[MacRange(BASE, BASE + 19)],
                                allow_duplicates=False)
    manager.app.macpools.set_cluster_pool("Default", "small")
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        cid = conn.execute("SELECT id FROM clusters WHERE name = 'Default'").fetchone()[0]
        allocate_macs(conn, cid, 18)     # 2 of 20 free: above 5 %
        conn.commit()
        assert _events(manager, object_kind="macpool") == []
        allocate_macs(conn, cid, 1)      # 1 free: 5 %
        conn.commit()
        allocate_macs(conn, cid, 1)      # none free
        conn.commit()
    macpools.forget_cache()
    rows = _events(manager, object_kind="macpool", object_name="small")
    assert [(r.rpc, r.identity_name, r.identity_kind, r.summary["free"]) for r in rows] == [
        ("macpool.low", "manager", "system", 1), ("macpool.empty", "manager", "system", 0)]
    assert "1 of 20 addresses free" in rows[0].message


def _enrolled_sim_material(manager, sock: Path):
    """The simulator's certificate for sim00001, enrolled through the fleet API (it serves the pinned name)."""
    return simulated_fleet_material(manager.app.ca, lambda spec, csr: manager.fleet.EnrollHost(
        fleet_pb2.EnrollHostRequest(name=spec.name, address=spec.address, csr_pem=csr,
                                    endpoint=f"unix://{sock}")).certificate_pem, hosts=1)


def test_a_silent_host_is_an_event_and_so_is_its_return(manager):
    manager.app.monitor.unreachable_after_s = 3.0
    with tempfile.TemporaryDirectory(prefix="vft-ev-") as d:
        sock = Path(d) / "sim.sock"
        material = _enrolled_sim_material(manager, sock)
        with FleetSimulator(material, sock, hosts=1):
            assert eventually(lambda: manager.app.monitor.current("sim00001") is not None)
        actions = lambda: [r.rpc for r in _events(manager, object_kind="host", object_name="sim00001")]  # noqa: E731
        assert eventually(lambda: "host.unreachable" in actions())
        with FleetSimulator(material, sock, hosts=1):
            assert eventually(lambda: "host.reachable" in actions(), timeout_s=60)
    rows = _events(manager, object_kind="host", object_name="sim00001", identity="manager")
    assert [r.rpc for r in rows][:2] == ["host.unreachable", "host.reachable"]
    assert rows[0].summary == {"silent_s": 3.0} and rows[0].code == "OK"


def _run(manager, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--manager", manager.target, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_shows_the_trail_as_a_table_and_as_json(manager):
    rec = manager.app.events
    rec.record_system("host.unreachable", "host", "h1", {"silent_s": 30}, "no report for 30 s")
    rec.record_call(identity=None, method="/virtfleet.v1.FleetService/DeleteNetwork",
                    request=fleet_pb2.DeleteNetworkRequest(name="vmnet"), code="UNAUTHENTICATED",
                    message="no identity", duration_s=0.0042, request_id="req-7")
    rec.flush()
    text = _run(manager, "events", "--since", "1h")
    assert "host.unreachable" in text and "host/h1" in text and "manager (system, admin)" in text
    assert "DeleteNetwork" in text and "network/vmnet" in text and "UNAUTHENTICATED" in text
    rows = json.loads(_run(manager, "events", "--object", "network/vmnet", "-o", "json"))
    assert len(rows) == 1
    row = rows[0]
    assert isinstance(row["id"], int) and row["duration_ms"] == 4.2
    assert (row["identity_kind"], row["role"], row["code"], row["request_id"]) == (
        "anonymous", None, "UNAUTHENTICATED", "req-7")
    assert row["summary"] == {"name": "vmnet"} and row["rpc"] == "/virtfleet.v1.FleetService/DeleteNetwork"
    assert json.loads(_run(manager, "events", "--identity", "nobody", "-o", "json")) == []
    assert _run(manager, "events", "--identity", "nobody") == "no events\n"


def test_follow_streams_new_events(manager):
    stub = events_pb2_grpc.EventServiceStub(manager.channel)
    stream = stub.FollowEvents(events_pb2.FollowEventsRequest(filter=events_pb2.EventFilter(object="host/h2")))
    manager.app.events.record_system("host.unreachable", "host", "h2")
    first = next(stream)
    stream.cancel()
    assert (first.rpc, first.object_kind, first.object_name, first.identity) == (
        "host.unreachable", "host", "h2", "manager")


def test_a_malformed_object_filter_is_refused(manager):
    import grpc
    import pytest
    stub = events_pb2_grpc.EventServiceStub(manager.channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ListEvents(events_pb2.ListEventsRequest(filter=events_pb2.EventFilter(object="vm/a/b")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter.object" in err.value.details()


def test_since_takes_durations_and_iso_times():
    import datetime as dt

    import click
    import pytest

    from manager.cli.events import parse_since
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("1h", now) == now - dt.timedelta(hours=1)
    assert parse_since("30m", now) == now - dt.timedelta(minutes=30)
    assert parse_since("2d", now) == now - dt.timedelta(days=2)
    assert parse_since("2024-04-30T10:00:00+00:00", now) == dt.datetime(2024, 4, 30, 10, tzinfo=dt.timezone.utc)
    assert parse_since("2024-04-30T10:00", now).tzinfo is not None
    with pytest.raises(click.BadParameter):
        parse_since("yesterday", now)
