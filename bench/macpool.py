"""MAC allocation at any fill: `python -m bench.macpool [--batch 1000 --mem 100000 --db 50000]`.

One pool with one range of 2^24 addresses (a whole OUI).

In memory: the allocator alone. 0 %: from an empty pool. 99 %: the pool is
filled by the allocator itself (every address allocated, then a random 1 %
released, so the free addresses are scattered), then the same count is taken.

Persisted: `allocate_macs` on a real PostgreSQL, one transaction (and commit)
per batch, as a vNIC-creating caller would. 0 %: a fresh pool. 99 %: a random
99 % of the range is bulk-loaded into mac_leases with one INSERT … SELECT
(foreign-key triggers off for the load only), then VACUUM ANALYZE and a
CHECKPOINT so the timing does not pay for the load's own writes, then a fresh manager process
(empty cache) loads the pool — timed on its own — and the same count is taken.

Naive baseline, same database: one SELECT per candidate address, then an
INSERT, per MAC — what allocation looks like without the in-memory allocator.

The database is a private cluster with fsync on (as in production) unless
VIRTFLEET_TEST_DSN points at a server. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg_pool import ConnectionPool

from manager.lab.postgres import throwaway_database, throwaway_server
from manager.macpool.allocator import MacAllocator
from manager.macpool.ranges import MacRange
from manager.service import macpools
from manager.service.macpools import MacPoolService, allocate_macs
from manager.store.migrations import apply_migrations

RANGE = MacRange(0x02_1A_4A_00_00_00, 0x02_1A_4A_FF_FF_FF)   # 2^24 addresses
FREE_SHARE = 0.01


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


@contextmanager
def database() -> Iterator[str]:
    """fsync on: persisted rates are what a real manager gets."""
    with throwaway_server(durable=True, prefix="vfb-mac-") as server, \
            throwaway_database(server, prefix="vfb_") as dsn:
        yield dsn


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# -- in memory ----------------------------------------------------------------------------------


def mem_take(alloc: MacAllocator, count: int, batch: int) -> float:
    t = time.perf_counter()
    left = count
    while left:
        n = min(batch, left)
        alloc.allocate(n)
        left -= n
    return rate(count, time.perf_counter() - t)


def bench_memory(count: int, batch: int) -> dict[str, float]:
    empty = MacAllocator([RANGE])
    bytes_per_range = empty.memory()
    at_0 = mem_take(empty, count, batch)

    full = MacAllocator([RANGE])
    t = time.perf_counter()
    while full.free:
        full.allocate(min(1 << 20, full.free))
    released = random.Random(4).sample(range(RANGE.first, RANGE.last + 1), int(RANGE.size * FREE_SHARE))
    for mac in released:
        full.release(mac)
    fill_s = time.perf_counter() - t
    fill_before = 1 - full.free / full.total
    at_99 = mem_take(full, count, batch)
    return {"at_0": at_0, "at_99": at_99, "fill_s": fill_s, "fill_before": fill_before, "bytes": bytes_per_range,
            "fill_after": 1 - full.free / full.total}


# -- persisted ----------------------------------------------------------------------------------


def db_take(conn: psycopg.Connection, cluster_id: int, count: int, batch: int) -> tuple[float, float]:
    """(MACs/s, WAL bytes written per MAC) of `allocate_macs` + commit per batch."""
    wal_start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    conn.commit()
    t = time.perf_counter()
    left = count
    while left:
        n = min(batch, left)
        allocate_macs(conn, cluster_id, n)
        conn.commit()
        left -= n
    per_s = rate(count, time.perf_counter() - t)
    wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (wal_start,)).fetchone()[0]
    conn.commit()
    return per_s, float(wal) / count


def naive_take(conn: psycopg.Connection, cluster_id: int, pool_id: int, count: int, batch: int,
               start: int | None = None) -> float:
    """Per MAC: SELECT each candidate until one is free, then INSERT it; commit per batch.

    Starts at `start`, or after the highest MAC in use (untouched addresses: the 0 % case).
    """
    candidate = start if start is not None else conn.execute(
        "SELECT coalesce(max(mac) + 1, %s) FROM mac_leases WHERE pool_id = %s", (RANGE.first, pool_id)).fetchone()[0]
    conn.commit()
    if candidate > RANGE.last:
        candidate = RANGE.first
    t = time.perf_counter()
    for i in range(count):
        while conn.execute("SELECT 1 FROM mac_leases WHERE datacenter_id = 1 AND mac = %s AND seq = 0",
                           (candidate,)).fetchone():
            candidate = candidate + 1 if candidate < RANGE.last else RANGE.first
        conn.execute("INSERT INTO mac_leases (datacenter_id, mac, pool_id, cluster_id) VALUES (1, %s, %s, %s)",
                     (candidate, pool_id, cluster_id))
        if (i + 1) % batch == 0:
            conn.commit()
    conn.commit()
    return rate(count, time.perf_counter() - t)


def fill_database(conn: psycopg.Connection, cluster_id: int, pool_id: int) -> tuple[float, float]:
    """A random 99 % of the range in use, loaded server-side; returns (seconds, fill)."""
    t = time.perf_counter()
    conn.execute("SET session_replication_role = replica")   # no FK triggers for the bulk load
    conn.execute("SELECT setseed(0.4)")
    conn.execute(
        """INSERT INTO mac_leases (datacenter_id, mac, pool_id, cluster_id)
           SELECT 1, m, %s, %s FROM generate_series(%s::bigint, %s::bigint) AS m WHERE random() >= %s
           ON CONFLICT DO NOTHING""", (pool_id, cluster_id, RANGE.first, RANGE.last, FREE_SHARE))
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE mac_leases")
    conn.execute("CHECKPOINT")   # the load's dirty pages and WAL are the load's cost, not allocation's
    conn.autocommit = False
    used = conn.execute("SELECT count(*) FROM mac_leases WHERE pool_id = %s", (pool_id,)).fetchone()[0]
    conn.commit()
    return time.perf_counter() - t, used / RANGE.size


def bench_database(dsn: str, count: int, naive_count: int, naive_full_count: int, batch: int) -> dict[str, float]:
    with psycopg.connect(dsn) as conn:
        apply_migrations(conn)
    with ConnectionPool(dsn, min_size=1, max_size=1) as pool:
        service = MacPoolService(pool)
        service.create(name="bench", datacenter="", ranges=[RANGE], allow_duplicates=False)
        service.set_cluster_pool("Default", "bench")
    macpools.forget_cache()
    with psycopg.connect(dsn) as conn:
        cid, pool_id = conn.execute("SELECT id, mac_pool_id FROM clusters WHERE name = 'Default'").fetchone()
        conn.commit()
        out: dict[str, float] = {}
        log(f"persisted, 0 % fill: {count} MACs in batches of {batch}")
        out["at_0"], out["wal_0"] = db_take(conn, cid, count, batch)
        log(f"  {out['at_0']:,.0f} MACs/s")
        log(f"naive baseline, near 0 % fill: {naive_count} MACs")
        out["naive_0"] = naive_take(conn, cid, pool_id, naive_count, batch)
        log(f"  {out['naive_0']:,.0f} MACs/s")
        log("bulk-loading 99 % of 2^24 addresses into mac_leases")
        out["fill_s"], out["fill_before"] = fill_database(conn, cid, pool_id)
        log(f"  {out['fill_s']:.0f} s, {100 * out['fill_before']:.2f} % in use")
        macpools.forget_cache()    # a fresh manager process: its first call loads the pool
        t = time.perf_counter()
        allocate_macs(conn, cid, 1)
        conn.commit()
        out["load_s"] = time.perf_counter() - t
        log(f"a fresh process loaded the pool in {out['load_s']:.1f} s")
        log(f"persisted, 99 % fill: {count} MACs")
        out["at_99"], out["wal_99"] = db_take(conn, cid, count, batch)
        log(f"  {out['at_99']:,.0f} MACs/s")
        log(f"naive baseline, 99 % fill: {naive_full_count} MACs")
        # a part of the range neither the persisted run nor the bulk load's cursor touched: honestly 99 % full
        out["naive_99"] = naive_take(conn, cid, pool_id, naive_full_count, batch,
                                     start=RANGE.first + RANGE.size * 3 // 4)
        used = conn.execute("SELECT count(*) FROM mac_leases WHERE pool_id = %s", (pool_id,)).fetchone()[0]
        dups = conn.execute("SELECT count(*) - count(DISTINCT mac) FROM mac_leases").fetchone()[0]
        out["fill_after"] = used / RANGE.size
        out["duplicates"] = dups
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.macpool", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1000, help="MACs per allocate call (and per commit)")
    p.add_argument("--mem", type=int, default=100_000, help="MACs taken in memory at each fill")
    p.add_argument("--db", type=int, default=50_000, help="MACs taken persisted at each fill")
    p.add_argument("--naive", type=int, default=5_000, help="MACs the naive baseline takes near 0 %% fill")
    p.add_argument("--naive-full", type=int, default=500, help="MACs the naive baseline takes at 99 %% fill")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the private database on the way out

    log(f"in memory: {args.mem} MACs at 0 % and at 99 % fill")
    mem = bench_memory(args.mem, args.batch)
    log(f"  {mem['at_0']:,.0f} MACs/s at 0 %, {mem['at_99']:,.0f} MACs/s at 99 %")
    with database() as dsn:
        db = bench_database(dsn, args.db, args.naive, args.naive_full, args.batch)

    mem_slow = mem["at_0"] / mem["at_99"]
    db_slow = db["at_0"] / db["at_99"]
    rows = [
        ("in memory, 0 % fill", f"{mem['at_0']:,.0f}", f"{args.mem:,} MACs from an empty 2^24 pool"),
        ("in memory, 99 % fill", f"{mem['at_99']:,.0f}",
         f"filled by the allocator in {mem['fill_s']:.1f} s (all allocated, random 1 % released); "
         f"{100 * mem['fill_before']:.2f} % -> {100 * mem['fill_after']:.2f} %"),
        ("persisted, 0 % fill", f"{db['at_0']:,.0f}", f"allocate_macs + commit, {args.batch} per batch"),
        ("persisted, 99 % fill", f"{db['at_99']:,.0f}",
         f"random 99 % bulk-loaded (+ checkpoint) in {db['fill_s']:.0f} s; fresh process loaded the pool in {db['load_s']:.1f} s; "
         f"{100 * db['fill_before']:.2f} % -> {100 * db['fill_after']:.2f} %"),
        ("naive, near 0 % fill", f"{db['naive_0']:,.0f}", "SELECT each candidate, then INSERT, per MAC"),
        ("naive, 99 % fill", f"{db['naive_99']:,.0f}", "same, about 100 SELECTs per MAC"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'MACs/s':>10}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    print(f"slowdown at 99 % fill: in memory {mem_slow:.2f}x, persisted {db_slow:.2f}x (target: within 2x)")
    print(f"WAL written per persisted MAC: {db['wal_0']:,.0f} bytes at 0 %, {db['wal_99']:,.0f} bytes at 99 % "
          "(at 99 % the free addresses are scattered, so nearly every MAC lands on its own index leaf pages, "
          "each written to the WAL in full after a checkpoint)")
    print(f"persisted vs naive: {db['at_0'] / db['naive_0']:.0f}x at 0 %, {db['at_99'] / db['naive_99']:.0f}x at 99 %")
    print(f"duplicate MACs in the database afterwards: {db['duplicates']}")
    print(f"allocator memory per 2^24 range: {mem['bytes'] / 2**20:.1f} MiB (a bit per address)")
    print(json.dumps({
        "mem_per_s": round(min(mem["at_0"], mem["at_99"])),
        "persisted_per_s": round(min(db["at_0"], db["at_99"])),
        "naive_per_s": round(db["naive_0"]),
        "slowdown_at_99pct": round(max(mem_slow, db_slow), 3),
        "allocator_bytes_per_2^24": int(mem["bytes"]),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
