"""The MAC allocator's memory is bounded (a bit per address) and freed when its pool goes."""
from __future__ import annotations

from typing import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from manager.macpool.allocator import MacAllocator
from manager.macpool.ranges import MacRange
from manager.service import macpools
from manager.service.macpools import MacPoolService, allocate_macs
from manager.store.migrations import apply_migrations
from virtfleet import rules
from virtfleet.errors import InvalidArgument

OUI = 1 << 24


def _oui(i: int) -> MacRange:
    first = 0x02_00_00_00_00_00 + (i << 25)     # apart: merged ranges stay one OUI each
    return MacRange(first, first + OUI - 1)


def test_a_whole_oui_costs_two_mebibytes():
    assert MacAllocator([_oui(0)]).memory() == OUI // 8


def test_the_most_ranges_a_pool_may_hold_cost_a_bounded_amount():
    alloc = MacAllocator([_oui(i) for i in range(rules.MAX_RANGES_PER_POOL)])
    assert alloc.memory() == rules.MAX_RANGES_PER_POOL * OUI // 8
    assert alloc.allocate(3) == [_oui(0).first, _oui(0).first + 1, _oui(0).first + 2]


@pytest.fixture
def service(empty_db: str) -> Iterator[MacPoolService]:
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
    macpools.forget_cache()
    with ConnectionPool(empty_db, min_size=1, max_size=2) as pool:
        yield MacPoolService(pool)
    macpools.forget_cache()


def test_deleting_a_pool_frees_its_allocator(service: MacPoolService, empty_db: str):
    service.create(name="big", datacenter="", ranges=[_oui(i) for i in range(4)], allow_duplicates=False)
    service.set_cluster_pool("Default", "big")
    with psycopg.connect(empty_db) as conn:
        cluster = conn.execute("SELECT id FROM clusters WHERE name = 'Default'").fetchone()[0]
        macs = allocate_macs(conn, cluster, 2)
        conn.execute("DELETE FROM mac_leases")
        conn.commit()
    assert len(macs) == 2 and macpools.cached_pools() == 1
    service.set_cluster_pool("Default", "Default")
    service.delete("big")
    assert macpools.cached_pools() == 0


def test_a_pool_with_too_many_ranges_is_refused_and_not_created(service: MacPoolService):
    too_many = [_oui(i) for i in range(rules.MAX_RANGES_PER_POOL + 1)]
    with pytest.raises(InvalidArgument) as err:
        service.create(name="huge", datacenter="", ranges=too_many, allow_duplicates=False)
    assert err.value.field == "pool.ranges"
    assert "huge" not in [v.pool.name for v in service.list()]
