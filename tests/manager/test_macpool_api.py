"""MAC pools through the gRPC API: pool rules, bad input naming the field, and nothing changed."""
from __future__ import annotations

import grpc
import psycopg
import pytest

from manager.service import macpools
from virtfleet.rpc import field_violations
from virtfleet.v1 import macpool_pb2, macpool_pb2_grpc

A = "02:00:00:00:10:00"


@pytest.fixture
def pools(manager):
    macpools.forget_cache()
    yield macpool_pb2_grpc.MacPoolServiceStub(manager.channel)
    macpools.forget_cache()


def _create(pools, name="lab", ranges=((A, "02:00:00:00:10:0f"),), allow_duplicates=False):
    return pools.CreateMacPool(macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(
        name=name, allow_duplicates=allow_duplicates,
        ranges=[macpool_pb2.MacRange(first=f, last=l) for f, l in ranges])))


def _state(manager):
    """Everything MAC pools keep, to prove a refused request changed nothing."""
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return (conn.execute("SELECT name, allow_duplicates, version FROM mac_pools ORDER BY name").fetchall(),
                conn.execute("SELECT pool_id, first, last FROM mac_pool_ranges ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT name, mac_pool_id FROM clusters ORDER BY name").fetchall(),
                conn.execute("SELECT mac, seq, pool_id, cluster_id FROM mac_leases ORDER BY 1, 2").fetchall())


def _sql(manager, query, *args) -> None:
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        conn.execute(query, args)


def _take(manager, cluster: str, count: int = 0, mac: str = "") -> list[str]:
    """What a vNIC does: allocate or claim in a transaction of its own."""
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        cid = conn.execute("SELECT id FROM clusters WHERE name = %s", (cluster,)).fetchone()[0]
        got = macpools.allocate_macs(conn, cid, count) if count else [macpools.claim_mac(conn, cid, mac)]
        conn.commit()
        return got


def test_overlapping_ranges_are_merged_and_usage_shown(pools):
    pool = _create(pools, ranges=((A, "02:00:00:00:10:0f"), ("02:00:00:00:10:08", "02:00:00:00:10:1f"),
                                  ("02:00:00:00:20:00", "02:00:00:00:20:00")))
    assert [(r.first, r.last) for r in pool.ranges] == [(A, "02:00:00:00:10:1f"),
                                                        ("02:00:00:00:20:00", "02:00:00:00:20:00")]
    assert (pool.usage.total, pool.usage.used, pool.usage.free, pool.usage.custom) == (33, 0, 33, 0)
    listed = pools.ListMacPools(macpool_pb2.ListMacPoolsRequest()).pools
    assert [(p.name, p.is_default, list(p.clusters)) for p in listed] == [("Default", True, ["Default"]),
                                                                         ("lab", False, [])]


@pytest.mark.parametrize("rng, field", [
    (macpool_pb2.MacRange(first="02:00:00:00:00", last=A), "pool.ranges[0].first"),
    (macpool_pb2.MacRange(first=A, last="not-a-mac"), "pool.ranges[0].last"),
    (macpool_pb2.MacRange(first="02:00:00:00:10:0f", last=A), "pool.ranges[0].last"),
    (macpool_pb2.MacRange(first="ff:ff:ff:ff:ff:00", count=512), "pool.ranges[0].count"),
    (macpool_pb2.MacRange(first="01:00:00:00:00:00", last="01:00:00:00:00:ff"), "pool.ranges[0].first"),
    (macpool_pb2.MacRange(first="02:00:00:00:00:00", last="02:00:01:00:00:00"), "pool.ranges[0].last"),
])
def test_bad_range_names_the_field_and_changes_nothing(manager, pools, rng, field):
    before = _state(manager)
    with pytest.raises(grpc.RpcError) as err:
        pools.CreateMacPool(macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(name="bad", ranges=[rng])))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == [field]
    assert _state(manager) == before


def test_bad_range_on_add_range_names_the_field(manager, pools):
    _create(pools)
    before = _state(manager)
    with pytest.raises(grpc.RpcError) as err:
        pools.AddMacPoolRange(macpool_pb2.MacPoolRangeRequest(
            name="lab", range=macpool_pb2.MacRange(first="ff:ff:ff:ff:ff:fe", count=3)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["range.count"]
    assert _state(manager) == before


def test_unknown_pool_and_cluster_are_not_found(manager, pools):
    before = _state(manager)
    for call in (lambda: pools.GetMacPool(macpool_pb2.GetMacPoolRequest(name="nope")),
                 lambda: pools.AddMacPoolRange(macpool_pb2.MacPoolRangeRequest(
                     name="nope", range=macpool_pb2.MacRange(first=A, count=1))),
                 lambda: pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default",
                                                                                      mac_pool="nope")),
                 lambda: pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="nope",
                                                                                      mac_pool="Default"))):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.value.details()
    assert _state(manager) == before


def test_removing_or_shrinking_a_range_in_use_is_refused_with_the_count(manager, pools):
    _create(pools)
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default", mac_pool="lab"))
    _take(manager, "Default", count=3)      # 02:00:00:00:10:00 .. :02
    before = _state(manager)
    with pytest.raises(grpc.RpcError) as err:
        pools.RemoveMacPoolRange(macpool_pb2.MacPoolRangeRequest(
            name="lab", range=macpool_pb2.MacRange(first="02:00:00:00:10:01", last="02:00:00:00:10:0f")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details().startswith("2 MAC(s) in use")
    assert _state(manager) == before
    shrunk = pools.RemoveMacPoolRange(macpool_pb2.MacPoolRangeRequest(
        name="lab", range=macpool_pb2.MacRange(first="02:00:00:00:10:08", last="02:00:00:00:10:0f")))
    assert [(r.first, r.last) for r in shrunk.ranges] == [(A, "02:00:00:00:10:07")]
    assert (shrunk.usage.total, shrunk.usage.used, shrunk.usage.free) == (8, 3, 5)


def test_added_range_is_allocated_from_by_a_running_manager(manager, pools):
    _create(pools, ranges=((A, "02:00:00:00:10:01"),))
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default", mac_pool="lab"))
    assert _take(manager, "Default", count=2) == [A, "02:00:00:00:10:01"]
    pools.AddMacPoolRange(macpool_pb2.MacPoolRangeRequest(
        name="lab", range=macpool_pb2.MacRange(first="02:00:00:00:30:00", count=2)))
    assert _take(manager, "Default", count=2) == ["02:00:00:00:30:00", "02:00:00:00:30:01"]


def test_moving_a_cluster_moves_its_macs(manager, pools):
    _create(pools)
    _sql(manager, "INSERT INTO clusters (datacenter_id, name) SELECT id, 'prod' FROM datacenters")
    held = _take(manager, "prod", count=3)       # from the Default pool
    reply = pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="prod", mac_pool="lab"))
    assert reply.moved_macs == 3 and list(reply.pool.clusters) == ["prod"]
    assert (reply.pool.usage.used, reply.pool.usage.custom) == (3, 3)   # outside lab's ranges
    default = pools.GetMacPool(macpool_pb2.GetMacPoolRequest(name="Default"))
    assert default.usage.used == 0 and list(default.clusters) == ["Default"]
    assert sorted(held) == held


def test_moving_that_would_create_duplicates_is_refused_and_changes_nothing(manager, pools):
    _create(pools, name="shared", allow_duplicates=True)
    _sql(manager, "INSERT INTO clusters (datacenter_id, name) SELECT id, 'prod' FROM datacenters")
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="prod", mac_pool="shared"))
    (mac,) = _take(manager, "prod", count=1)
    _take(manager, "prod", mac=mac)              # a duplicate: allowed in "shared"
    before = _state(manager)
    with pytest.raises(grpc.RpcError) as err:
        pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="prod", mac_pool="Default"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "duplicate 1 MAC(s)" in err.value.details()
    assert _state(manager) == before


def test_pool_in_use_or_default_cannot_be_deleted(manager, pools):
    _create(pools)
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default", mac_pool="lab"))
    for name, words in (("lab", "used by 1 cluster(s): Default"), ("Default", "default pool")):
        with pytest.raises(grpc.RpcError) as err:
            pools.DeleteMacPool(macpool_pb2.DeleteMacPoolRequest(name=name))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and words in err.value.details()
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default", mac_pool="Default"))
    pools.DeleteMacPool(macpool_pb2.DeleteMacPoolRequest(name="lab"))
    assert [p.name for p in pools.ListMacPools(macpool_pb2.ListMacPoolsRequest()).pools] == ["Default"]


def test_exhausted_pool_is_resource_exhausted_through_the_api_layer(manager, pools):
    _create(pools, ranges=((A, A),))
    pools.SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster="Default", mac_pool="lab"))
    _take(manager, "Default", count=1)
    from virtfleet.errors import ResourceExhausted
    with pytest.raises(ResourceExhausted) as err:
        _take(manager, "Default", count=1)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "'lab'" in err.value.message and "0 of its 1 addresses free" in err.value.message


def test_ranges_merging_past_one_oui_are_refused(manager, pools):
    _create(pools, ranges=(("02:00:00:00:00:00", "02:00:00:ff:ff:ff"),))
    before = _state(manager)
    with pytest.raises(grpc.RpcError) as err:
        pools.AddMacPoolRange(macpool_pb2.MacPoolRangeRequest(
            name="lab", range=macpool_pb2.MacRange(first="02:00:01:00:00:00", count=1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["range"]
    assert _state(manager) == before


def test_too_many_ranges_are_counted_before_any_is_parsed(manager, pools):
    """A list past the limit is refused by its length, even when its items are garbage the parser would name."""
    from virtfleet import rules

    before = _state(manager)
    garbage = [macpool_pb2.MacRange(first="not-a-mac")] * (rules.MAX_RANGES_PER_POOL + 1)
    with pytest.raises(grpc.RpcError) as err:
        pools.CreateMacPool(macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(name="many", ranges=garbage)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["pool.ranges"]
    assert _state(manager) == before
