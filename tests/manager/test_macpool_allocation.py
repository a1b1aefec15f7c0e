"""Allocating, claiming and releasing MACs on a real PostgreSQL, inside the caller's transaction."""
from __future__ import annotations

from typing import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from manager.macpool.ranges import MacRange
from manager.service import macpools
from manager.service.macpools import MacPoolService, allocate_macs, claim_mac, pool_for_cluster, release_macs
from manager.store.migrations import apply_migrations
from virtfleet.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

BASE = 0x02_00_00_00_10_00


@pytest.fixture
def db(empty_db: str) -> Iterator[str]:
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
    macpools.forget_cache()
    yield empty_db
    macpools.forget_cache()


@pytest.fixture
def service(db: str) -> Iterator[MacPoolService]:
    with ConnectionPool(db, min_size=1, max_size=2) as pool:
        yield MacPoolService(pool)


def _mac(n: int) -> str:
    h = f"{n:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def _cluster(conn, name="Default") -> int:
    return conn.execute("SELECT id FROM clusters WHERE name = %s", (name,)).fetchone()[0]


def _new_cluster(conn, name: str) -> int:
    return conn.execute("INSERT INTO clusters (datacenter_id, name) SELECT id, %s FROM datacenters "
                        "WHERE name = 'Default' RETURNING id", (name,)).fetchone()[0]


def _leases(db: str) -> list[tuple[str, str]]:
    with psycopg.connect(db) as conn:
        return [(_mac(m), c) for m, c in conn.execute(
            "SELECT l.mac, c.name FROM mac_leases l JOIN clusters c ON c.id = l.cluster_id ORDER BY l.mac, l.seq")]


def _small_pool(service: MacPoolService, db: str, size: int = 4, allow_duplicates: bool = False,
                name: str = "small", cluster: str = "Default") -> None:
    service.create(name=name, datacenter="", ranges=[MacRange(BASE, BASE + size - 1)],
                   allow_duplicates=allow_duplicates)
    service.set_cluster_pool(cluster, name)


def test_default_pool_is_65536_locally_administered_unicast_addresses(db):
    with psycopg.connect(db) as conn:
        pool = pool_for_cluster(conn, _cluster(conn))
        macs = allocate_macs(conn, _cluster(conn), 3)
    assert pool.is_default and pool.name == "Default" and len(pool.ranges) == 1
    r = pool.ranges[0]
    assert r.size == 65536 and r.first % 65536 == 0
    first_octet = r.first >> 40
    assert first_octet & 0b10 and not first_octet & 0b01   # locally administered, unicast
    assert macs == sorted(macs) and len(set(macs)) == 3
    assert all(m == m.lower() and int(m.replace(":", ""), 16) in range(r.first, r.last + 1) for m in macs)


def test_allocation_is_sorted_and_visible_only_when_committed(db, service):
    _small_pool(service, db, size=8)
    with psycopg.connect(db) as conn:
        got = allocate_macs(conn, _cluster(conn), 5)
        assert _leases(db) == []      # another session does not see them yet
        conn.commit()
    assert got == [_mac(BASE + i) for i in range(5)]
    assert [m for m, _ in _leases(db)] == got


def test_rolled_back_allocation_returns_the_macs(db, service):
    _small_pool(service, db, size=4)
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        allocate_macs(conn, cid, 4)
        conn.rollback()
        assert service.get("small").used == 0
        # all four are free again: the whole pool can be taken in one call
        assert allocate_macs(conn, cid, 4) == [_mac(BASE + i) for i in range(4)]
        conn.commit()
    assert service.get("small").free == 0


def test_exhausted_pool_names_pool_and_size_and_takes_nothing(db, service):
    _small_pool(service, db, size=4)
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        allocate_macs(conn, cid, 3)
        with pytest.raises(ResourceExhausted) as err:
            allocate_macs(conn, cid, 2)
        assert "'small'" in err.value.message and "1 of its 4 addresses free" in err.value.message
        conn.commit()   # the caller's transaction survives the failed call, holding the first 3
    assert len(_leases(db)) == 3


def test_released_mac_is_free_only_after_commit_and_not_reused_at_once(db, service):
    _small_pool(service, db, size=4)
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        first = allocate_macs(conn, cid, 1)
        conn.commit()
        release_macs(conn, cid, first)
        assert [m for m, _ in _leases(db)] == first   # still in use for everyone else
        conn.commit()
        assert _leases(db) == []
        nxt = allocate_macs(conn, cid, 3)
        assert first[0] not in nxt       # the cursor moved on
        assert allocate_macs(conn, cid, 1) == first   # back only when nothing else is left
        conn.commit()


def test_explicit_mac_outside_ranges_is_accepted_normalised_and_counted_custom(db, service):
    _small_pool(service, db, size=4)
    with psycopg.connect(db) as conn:
        assert claim_mac(conn, _cluster(conn), "02-AA-BB-CC-DD-EE") == "02:aa:bb:cc:dd:ee"
        conn.commit()
    view = service.get("small")
    assert (view.total, view.used, view.free, view.custom) == (4, 1, 4, 1)


def test_explicit_mac_in_use_anywhere_in_the_datacenter_is_refused(db, service):
    _small_pool(service, db, size=4)
    with psycopg.connect(db) as conn:
        other = _new_cluster(conn, "other")     # uses the Default pool
        conn.commit()
        claim_mac(conn, other, _mac(BASE + 1))
        conn.commit()
        with pytest.raises(AlreadyExists) as err:
            claim_mac(conn, _cluster(conn), _mac(BASE + 1))
        assert "cluster other" in err.value.message
        conn.commit()
        # the allocator skips what is taken elsewhere, even though its cache did not know
        assert allocate_macs(conn, _cluster(conn), 3) == [_mac(BASE), _mac(BASE + 2), _mac(BASE + 3)]


def test_database_refuses_a_duplicate_even_without_the_allocator(db):
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        mac = allocate_macs(conn, cid, 1)[0]
        conn.commit()
        value = int(mac.replace(":", ""), 16)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO mac_leases (datacenter_id, mac, pool_id, cluster_id) "
                         "SELECT 1, %s, mac_pool_id, id FROM clusters WHERE id = %s", (value, cid))


def test_pool_allowing_duplicates_accepts_an_explicit_duplicate(db, service):
    _small_pool(service, db, size=4, allow_duplicates=True)
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        (mac,) = allocate_macs(conn, cid, 1)
        assert claim_mac(conn, cid, mac) == mac
        conn.commit()
        assert service.get("small").used == 2
        # automatic allocation still never hands out a MAC in use
        assert mac not in allocate_macs(conn, cid, 3)
        release_macs(conn, cid, [mac])
        conn.commit()
    assert [m for m, _ in _leases(db)].count(mac) == 1


def test_duplicates_never_cross_into_a_pool_that_forbids_them(db, service):
    _small_pool(service, db, size=4, allow_duplicates=True)
    with psycopg.connect(db) as conn:
        other = _new_cluster(conn, "other")    # Default pool forbids duplicates
        conn.commit()
        claim_mac(conn, other, _mac(BASE))
        conn.commit()
        with pytest.raises(AlreadyExists):
            claim_mac(conn, _cluster(conn), _mac(BASE))


@pytest.mark.parametrize("mac, field", [("02:00:00:00:00", "mac"), ("zz:00:00:00:00:01", "mac"),
                                        ("01:00:5e:00:00:01", "mac")])
def test_bad_explicit_mac_names_the_field_and_changes_nothing(db, mac, field):
    with psycopg.connect(db) as conn:
        with pytest.raises(InvalidArgument) as err:
            claim_mac(conn, _cluster(conn), mac)
        assert err.value.field == field
    assert _leases(db) == []


def test_bad_count_and_unknown_cluster(db):
    with psycopg.connect(db) as conn:
        with pytest.raises(InvalidArgument) as err:
            allocate_macs(conn, _cluster(conn), 0)
        assert err.value.field == "count"
        with pytest.raises(NotFound):
            allocate_macs(conn, 999, 1)


def test_releasing_a_mac_the_cluster_does_not_hold_changes_nothing(db):
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        held = allocate_macs(conn, cid, 2)
        conn.commit()
        with pytest.raises(NotFound) as err:
            release_macs(conn, cid, [held[0], "02:99:99:99:99:99"])
        assert "macs[1]" in err.value.message
        conn.commit()
    assert [m for m, _ in _leases(db)] == held


def test_low_free_addresses_log_a_warning_and_record_an_event(db, service, caplog):
    _small_pool(service, db, size=20)
    macpools.configure(warn_free_percent=10)
    try:
        with psycopg.connect(db) as conn:
            cid = _cluster(conn)
            allocate_macs(conn, cid, 17)
            conn.commit()
            assert service.events("small") == []
            allocate_macs(conn, cid, 1)      # 2 of 20 free: 10 %
            conn.commit()
    finally:
        macpools.configure(warn_free_percent=5)
    assert [k for k, _ in service.events("small")] == ["low_free"]
    assert "2 of 20 addresses free" in service.events("small")[0][1]
    assert any("running low" in r.getMessage() for r in caplog.records)


def test_a_shared_mac_released_by_its_first_holder_stays_with_the_other(db, service):
    _small_pool(service, db, size=4, allow_duplicates=True)
    with psycopg.connect(db) as conn:
        other = _new_cluster(conn, "other")
        conn.commit()
    service.set_cluster_pool("other", "small")
    with psycopg.connect(db) as conn:
        (mac,) = allocate_macs(conn, _cluster(conn), 1)
        claim_mac(conn, other, mac)
        conn.commit()
        release_macs(conn, _cluster(conn), [mac])
        conn.commit()
    assert _leases(db) == [(mac, "other")]


def test_two_pools_that_allow_duplicates_do_not_share_a_mac(db, service):
    _small_pool(service, db, size=4, allow_duplicates=True)
    service.create(name="second", datacenter="", ranges=[MacRange(BASE + 100, BASE + 103)], allow_duplicates=True)
    with psycopg.connect(db) as conn:
        other = _new_cluster(conn, "other")
        conn.commit()
    service.set_cluster_pool("other", "second")
    with psycopg.connect(db) as conn:
        (mac,) = allocate_macs(conn, _cluster(conn), 1)
        conn.commit()
        with pytest.raises(AlreadyExists) as err:
            claim_mac(conn, other, mac)
        assert "only MACs of one pool may be shared" in err.value.message


def test_moving_a_cluster_away_from_macs_it_shares_is_refused(db, service):
    _small_pool(service, db, size=4, allow_duplicates=True)
    service.create(name="second", datacenter="", ranges=[MacRange(BASE + 100, BASE + 103)], allow_duplicates=True)
    with psycopg.connect(db) as conn:
        other = _new_cluster(conn, "other")
        conn.commit()
    service.set_cluster_pool("other", "small")
    with psycopg.connect(db) as conn:
        (mac,) = allocate_macs(conn, _cluster(conn), 1)
        claim_mac(conn, other, mac)
        conn.commit()
    before = _leases(db)
    from virtfleet.errors import FailedPrecondition
    with pytest.raises(FailedPrecondition) as err:
        service.set_cluster_pool("other", "second")
    assert "shares with other clusters" in err.value.message
    assert _leases(db) == before and service.get("small").clusters == ["Default", "other"]


def test_a_new_datacenter_gets_its_own_default_pool_for_its_clusters(db, service):
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO datacenters (name) VALUES ('east')")
        east = conn.execute("INSERT INTO clusters (datacenter_id, name) SELECT id, 'e1' FROM datacenters "
                            "WHERE name = 'east' RETURNING id").fetchone()[0]
        conn.commit()
        pool = pool_for_cluster(conn, east)
        default = pool_for_cluster(conn, _cluster(conn))
    assert (pool.datacenter, pool.name, pool.is_default) == ("east", "Default", True)
    assert pool.id != default.id and pool.ranges != default.ranges
    with pytest.raises(NotFound):          # a pool of another datacenter is not offered
        service.create(name="west", datacenter="", ranges=[MacRange(BASE, BASE)], allow_duplicates=False)
        service.set_cluster_pool("e1", "west")


def test_database_keeps_shared_uses_in_the_pool_of_the_first_use(db, service):
    """Written straight to the table: the database itself refuses, whatever the service does."""
    _small_pool(service, db, size=4, allow_duplicates=True)
    with psycopg.connect(db) as conn:
        cid = _cluster(conn)
        shared_pool = pool_for_cluster(conn, cid).id
        other = _new_cluster(conn, "other")            # Default pool: forbids duplicates
        (held,) = allocate_macs(conn, other, 1)
        (mine,) = allocate_macs(conn, cid, 1)
        conn.commit()
        insert = ("INSERT INTO mac_leases (datacenter_id, mac, seq, pool_id, cluster_id, shared) "
                  "VALUES (1, %s, 1, %s, %s, true)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(insert, (int(held.replace(":", ""), 16), shared_pool, cid))
        conn.rollback()
        conn.execute(insert, (int(mine.replace(":", ""), 16), shared_pool, cid))   # same pool: fine
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("DELETE FROM mac_leases WHERE mac = %s AND seq = 0", (int(mine.replace(":", ""), 16),))
