"""The read model (manager/service/readmodel.py) on a real PostgreSQL: a caller reads its own writes at once,
another manager's writes arrive by NOTIFY, and a lost LISTEN connection sends reads to the database."""
from __future__ import annotations

import time

import psycopg
import pytest

from manager.service.networks import NETWORK_TABLES
from manager.service.readmodel import ReadModel
from manager.store import networks as net_store
from manager.store.database import open_pool
from virtfleet.v1 import fleet_pb2, macpool_pb2, macpool_pb2_grpc


def _names(model_group) -> list[str] | None:
    got = model_group.get()
    return None if got is None else [n.name for n in got]


def _eventually(check, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within %g s" % timeout_s)
        time.sleep(0.005)


def _other_manager_inserts_network(dsn: str, name: str) -> None:
    """Another manager's write: its own connection, nothing this process's pool could count."""
    with psycopg.connect(dsn) as conn:
        conn.execute("""INSERT INTO networks (datacenter_id, name, vlan, mtu, vm_network, description)
                        SELECT id, %s, NULL, 1500, true, '' FROM datacenters WHERE name = 'Default'""", (name,))


@pytest.fixture
def model(empty_db: str):
    pool = open_pool(empty_db, max_size=4)
    model = ReadModel(pool, empty_db)
    group = model.group("networks", NETWORK_TABLES, net_store.list_networks)
    model.start()
    try:
        _eventually(model.serving)
        yield model, group, pool, empty_db
    finally:
        model.stop()
        pool.close()


def test_a_caller_reads_its_own_writes_at_once(model):
    model, group, pool, _ = model
    for i in range(60):
        assert group.get() is not None or not model.serving()      # loaded whenever it may serve
        with pool.connection() as conn:
            net_store.insert_network(conn, name=f"own{i}", datacenter="Default", vlan=None, mtu=1500,
                                     vm_network=True, description="")
        got = _names(group)   # no sleep: the model either has it or says "read the database"
        if got is not None:
            assert f"own{i}" in got
    _eventually(lambda: _names(group) is not None)
    assert {f"own{i}" for i in range(60)} <= set(_names(group))


def test_another_managers_write_arrives_by_notify(model):
    model, group, _, dsn = model
    assert _names(group) == ["ovirtmgmt"]
    loads = group.loads
    _other_manager_inserts_network(dsn, "theirs")
    _eventually(lambda: "theirs" in (_names(group) or []), timeout_s=5)
    assert group.loads == loads + 1        # dropped by the notification and loaded again, not read past


def test_a_rolled_back_write_changes_nothing_and_a_read_stays_served(model):
    model, group, pool, _ = model
    assert _names(group) == ["ovirtmgmt"]
    with pytest.raises(RuntimeError), pool.connection() as conn:
        net_store.insert_network(conn, name="gone", datacenter="Default", vlan=None, mtu=1500, vm_network=True,
                                 description="")
        raise RuntimeError("rolled back")
    _eventually(lambda: _names(group) is not None)
    assert _names(group) == ["ovirtmgmt"]


def test_a_lost_listen_connection_sends_reads_to_the_database_until_it_is_back(model):
    model, group, _, dsn = model
    assert _names(group) == ["ovirtmgmt"]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (model.listener_pid,))
    _other_manager_inserts_network(dsn, "whiledown")    # its notification reaches nobody
    _eventually(lambda: not model.serving() or model.connects == 2, timeout_s=5)
    assert model.connects == 2 or group.get() is None   # meanwhile: the database answers
    _eventually(lambda: model.connects == 2 and model.serving(), timeout_s=10)
    assert _names(group) == ["ovirtmgmt", "whiledown"]  # the model was dropped, not kept stale


def test_a_barrier_of_another_manager_does_not_count_as_ours(model, empty_db):
    model, group, pool, dsn = model
    other_pool = open_pool(dsn, max_size=2)
    other = ReadModel(other_pool, dsn)
    other.group("networks", NETWORK_TABLES, net_store.list_networks)
    other.start()
    try:
        _eventually(other.serving)
        model._listening = False            # hold our own barrier back: only the other's can arrive
        with model._lock:
            model._issued += 5
        other.note_write()
        _eventually(lambda: other.serving())
        time.sleep(0.05)
        assert model._seen < model._issued
    finally:
        model._listening = True
        model.note_write()
        other.stop()
        other_pool.close()


def test_the_api_reads_its_own_writes_through_the_model(manager):
    fleet = manager.fleet
    pools = macpool_pb2_grpc.MacPoolServiceStub(manager.channel)
    for i in range(15):
        fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=f"api{i}", vlan=10 + i)))
        assert fleet.GetNetwork(fleet_pb2.GetNetworkRequest(name=f"api{i}")).vlan == 10 + i
        assert f"api{i}" in [n.name for n in fleet.ListNetworks(fleet_pb2.ListNetworksRequest()).networks]
        fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name=f"api{i}"))
        assert f"api{i}" not in [n.name for n in fleet.ListNetworks(fleet_pb2.ListNetworksRequest()).networks]
    pools.CreateMacPool(macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(
        name="p2", ranges=[macpool_pb2.MacRange(first="02:00:00:00:00:00", last="02:00:00:00:00:ff")])))
    assert pools.GetMacPool(macpool_pb2.GetMacPoolRequest(name="p2")).name == "p2"
    served = {g.name: g.loads for g in manager.app.read_model._groups}
    assert served["networks"] >= 1 and served["macpools"] >= 1    # the model did serve, between the writes
