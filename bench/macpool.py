"""MAC allocation at any fill: `python -m bench.macpool [--rounds 5 --batch 1000 --mem 100000 --db 50000]`.

In memory: the allocator alone, on a range of 2^24 addresses (a whole OUI). 0 %:
from an empty pool. 99 %: the pool is filled by the allocator itself (every
address allocated, then a random 1 % released, so the free addresses are
scattered), then `--mem` MACs are taken, released again and the cursor put back,
so every round sees the same pool. `--compare-old PATH` loads another checkout's
allocator module by file path and runs it in the same rounds (a before/after
that a loaded machine cannot skew: both take turns in one process).

Persisted: `allocate_macs` on a real PostgreSQL, one transaction (and commit)
per batch, as a vNIC-creating caller would, on two pools at once: one fresh
(0 %), one (another OUI) with a random 99 % of its range bulk-loaded into
mac_leases with one INSERT … SELECT (foreign-key triggers off for the load
only), then VACUUM ANALYZE and a CHECKPOINT so the timing does not pay for the
load's own writes, then a fresh manager process (empty cache) loads the pool —
timed on its own. The load is paid once; each round then takes `--db`/rounds
MACs at each fill (so the 99 % pool goes from 99.0 % to about 99.3 % in use).

Naive baseline, same database, same rounds: one SELECT per candidate address,
then an INSERT, per MAC — what allocation looks like without the in-memory
allocator.

The cases take turns in each of `--rounds` rounds (>= 5), so a load burst hits
them alike; medians and bests are reported. The database is a private cluster
with fsync on (as in production) unless VIRTFLEET_TEST_DSN points at a server.
The last line is one JSON object: medians under the plain names, `_best`
variants, ratios.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
import signal
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import psycopg
from psycopg_pool import ConnectionPool

from manager.lab.postgres import throwaway_database, throwaway_server
from manager.macpool import allocator as this_allocator
from manager.macpool.ranges import MacRange
from manager.service import macpools
from manager.service.macpools import MacPoolService, allocate_macs
from manager.store.migrations import apply_migrations

RANGE = MacRange(0x02_1A_4A_00_00_00, 0x02_1A_4A_FF_FF_FF)        # 2^24 addresses: the in-memory and 0 % pool
FULL_RANGE = MacRange(0x02_1A_4B_00_00_00, 0x02_1A_4B_FF_FF_FF)   # the 99 % full pool's
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


def load_allocator(path: Path) -> ModuleType:
    """Another checkout's allocator module, by file path (its `.ranges` import resolves to ours)."""
    spec = importlib.util.spec_from_file_location("manager.macpool.compared_allocator", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- in memory ----------------------------------------------------------------------------------


def mem_take(alloc, count: int, batch: int) -> tuple[float, list[int]]:
    got: list[int] = []
    t = time.perf_counter()
    left = count
    while left:
        n = min(batch, left)
        got += alloc.allocate(n)
        left -= n
    return rate(count, time.perf_counter() - t), got


def filled(module: ModuleType):
    """A 2^24 pool filled by the allocator itself, then a random 1 % released (the same 1 % each time)."""
    full = module.MacAllocator([RANGE])
    while full.free:
        full.allocate(min(1 << 20, full.free))
    for mac in random.Random(4).sample(range(RANGE.first, RANGE.last + 1), int(RANGE.size * FREE_SHARE)):
        full.release(mac)
    return full


def mem_round(module: ModuleType, full, count: int, batch: int) -> tuple[float, float]:
    """(MACs/s at 0 %, at 99 %); what the 99 % case took is released and the cursor put back."""
    at_0, _ = mem_take(module.MacAllocator([RANGE]), count, batch)
    full.start_after(RANGE.first - 1)
    at_99, got = mem_take(full, count, batch)
    for mac in got:
        full.release(mac)
    return at_0, at_99


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


def naive_take(conn: psycopg.Connection, cluster_id: int, pool_id: int, r: MacRange, count: int, batch: int,
               candidate: int) -> tuple[float, int]:
    """Per MAC: SELECT each candidate from `candidate` on until one is free, then INSERT it; commit per
    batch. Returns (MACs/s, the next candidate)."""
    t = time.perf_counter()
    for i in range(count):
        while conn.execute("SELECT 1 FROM mac_leases WHERE datacenter_id = 1 AND mac = %s AND seq = 0",
                           (candidate,)).fetchone():
            candidate = candidate + 1 if candidate < r.last else r.first
        conn.execute("INSERT INTO mac_leases (datacenter_id, mac, pool_id, cluster_id) VALUES (1, %s, %s, %s)",
                     (candidate, pool_id, cluster_id))
        if (i + 1) % batch == 0:
            conn.commit()
    conn.commit()
    return rate(count, time.perf_counter() - t), candidate


def fill_database(conn: psycopg.Connection, cluster_id: int, pool_id: int, r: MacRange) -> tuple[float, float]:
    """A random 99 % of `r` in use, loaded server-side; returns (seconds, fill)."""
    t = time.perf_counter()
    conn.execute("SET session_replication_role = replica")   # no FK triggers for the bulk load
    conn.execute("SELECT setseed(0.4)")
    conn.execute(
        """INSERT INTO mac_leases (datacenter_id, mac, pool_id, cluster_id)
           SELECT 1, m, %s, %s FROM generate_series(%s::bigint, %s::bigint) AS m WHERE random() >= %s
           ON CONFLICT DO NOTHING""", (pool_id, cluster_id, r.first, r.last, FREE_SHARE))
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE mac_leases")
    conn.execute("CHECKPOINT")   # the load's dirty pages and WAL are the load's cost, not allocation's
    conn.autocommit = False
    return time.perf_counter() - t, pool_use(conn, pool_id) / r.size


def pool_use(conn: psycopg.Connection, pool_id: int) -> int:
    used = conn.execute("SELECT count(*) FROM mac_leases WHERE pool_id = %s", (pool_id,)).fetchone()[0]
    conn.commit()
    return used


def setup_database(dsn: str) -> None:
    """Two pools of a whole OUI each: "fresh" for cluster Default, "full" for cluster full."""
    with psycopg.connect(dsn) as conn:
        apply_migrations(conn)
        conn.execute("INSERT INTO clusters (datacenter_id, name) VALUES (1, 'full')")
    with ConnectionPool(dsn, min_size=1, max_size=1) as pool:
        service = MacPoolService(pool)
        service.create(name="fresh", datacenter="", ranges=[RANGE], allow_duplicates=False)
        service.create(name="full", datacenter="", ranges=[FULL_RANGE], allow_duplicates=False)
        service.set_cluster_pool("Default", "fresh")
        service.set_cluster_pool("full", "full")
    macpools.forget_cache()


def bench_database(dsn: str, args: argparse.Namespace, mem_round_fn: Callable[[], None]) -> dict:
    """The persisted rounds; `mem_round_fn` runs one in-memory round, so all cases take turns."""
    setup_database(dsn)
    out: dict = {k: [] for k in ("at_0", "at_99", "wal_0", "wal_99", "naive_0", "naive_99")}
    with psycopg.connect(dsn) as conn:
        (fresh_cid, fresh_pid), (full_cid, full_pid) = conn.execute(
            "SELECT id, mac_pool_id FROM clusters WHERE name IN ('Default', 'full') ORDER BY name = 'full'").fetchall()
        conn.commit()
        log("bulk-loading 99 % of 2^24 addresses into mac_leases")
        out["fill_s"], out["fill_before"] = fill_database(conn, full_cid, full_pid, FULL_RANGE)
        log(f"  {out['fill_s']:.0f} s, {100 * out['fill_before']:.2f} % in use")
        t = time.perf_counter()
        allocate_macs(conn, full_cid, 1)        # a fresh manager process: its first call loads the pool
        conn.commit()
        out["load_s"] = time.perf_counter() - t
        log(f"a fresh process loaded the pool in {out['load_s']:.1f} s")
        allocate_macs(conn, fresh_cid, 1)
        conn.commit()
        fresh_next = RANGE.first + RANGE.size // 2      # naive: where neither the allocator nor the load went
        full_next = FULL_RANGE.first + FULL_RANGE.size * 3 // 4
        per_round = max(1, args.db // args.rounds)
        for i in range(args.rounds):
            mem_round_fn()
            at, wal = db_take(conn, fresh_cid, per_round, args.batch)
            out["at_0"].append(at), out["wal_0"].append(wal)
            at, wal = db_take(conn, full_cid, per_round, args.batch)
            out["at_99"].append(at), out["wal_99"].append(wal)
            at, fresh_next = naive_take(conn, fresh_cid, fresh_pid, RANGE, max(1, args.naive // args.rounds),
                                        args.batch, fresh_next)
            out["naive_0"].append(at)
            at, full_next = naive_take(conn, full_cid, full_pid, FULL_RANGE, max(1, args.naive_full // args.rounds),
                                       args.batch, full_next)
            out["naive_99"].append(at)
            log(f"round {i + 1}: persisted {out['at_0'][-1]:,.0f} / {out['at_99'][-1]:,.0f} MACs/s at 0 / 99 %, "
                f"naive {out['naive_0'][-1]:,.0f} / {out['naive_99'][-1]:,.0f}")
        out["fill_after"] = pool_use(conn, full_pid) / FULL_RANGE.size
        out["duplicates"] = conn.execute("SELECT count(*) - count(DISTINCT mac) FROM mac_leases").fetchone()[0]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.macpool", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every case (>= 5)")
    p.add_argument("--batch", type=int, default=1000, help="MACs per allocate call (and per commit)")
    p.add_argument("--mem", type=int, default=100_000, help="MACs taken in memory at each fill, per round")
    p.add_argument("--db", type=int, default=50_000, help="MACs taken persisted at each fill, over all rounds")
    p.add_argument("--naive", type=int, default=5_000, help="MACs the naive baseline takes near 0 %% fill, all rounds")
    p.add_argument("--naive-full", type=int, default=500, help="MACs the naive baseline takes at 99 %% fill, all rounds")
    p.add_argument("--compare-old", type=Path, metavar="ALLOCATOR_PY",
                   help="another checkout's manager/macpool/allocator.py, run in memory in the same rounds")
    args = p.parse_args(argv)
    if args.rounds < 5:
        p.error("--rounds must be at least 5 (medians of fewer rounds say little on a shared machine)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the private database on the way out

    modules = {"this": this_allocator}
    if args.compare_old:
        modules["old"] = load_allocator(args.compare_old)
    log(f"in memory: filling a 2^24 pool to 99 % ({', '.join(modules)})")
    t = time.perf_counter()
    fulls = {name: filled(m) for name, m in modules.items()}
    fill_s = (time.perf_counter() - t) / len(modules)
    fill_before = 1 - fulls["this"].free / fulls["this"].total
    mem: dict[str, list[float]] = {f"{name}_{f}": [] for name in modules for f in (0, 99)}

    def one_mem_round() -> None:
        for name, module in (modules.items() if len(mem["this_0"]) % 2 else reversed(modules.items())):
            at_0, at_99 = mem_round(module, fulls[name], args.mem, args.batch)
            mem[f"{name}_0"].append(at_0), mem[f"{name}_99"].append(at_99)
        log("in memory: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in mem.items()) + " MACs/s")

    with database() as dsn:
        db = bench_database(dsn, args, one_mem_round)
    report(args, mem, db, fill_s, fill_before, this_allocator.MacAllocator([RANGE]).memory())
    return 0


def med(values: list[float]) -> float:
    return statistics.median(values)


def ratios(a: list[float], b: list[float]) -> list[float]:
    """a/b per round (the rounds ran side by side)."""
    return [x / y for x, y in zip(a, b)]


def report(args: argparse.Namespace, mem: dict[str, list[float]], db: dict, fill_s: float, fill_before: float,
           allocator_bytes: int) -> None:
    rows = [
        ("in memory, 0 % fill", mem["this_0"], f"{args.mem:,} MACs from an empty 2^24 pool"),
        ("in memory, 99 % fill", mem["this_99"],
         f"filled by the allocator in {fill_s:.1f} s (all allocated, random 1 % released: "
         f"{100 * fill_before:.2f} % in use); taken, then released"),
    ]
    if "old_0" in mem:
        rows += [("  old allocator, 0 %", mem["old_0"], str(args.compare_old)),
                 ("  old allocator, 99 %", mem["old_99"], "same rounds, same process")]
    rows += [
        ("persisted, 0 % fill", db["at_0"], f"allocate_macs + commit, {args.batch} per batch"),
        ("persisted, 99 % fill", db["at_99"],
         f"random 99 % bulk-loaded (+ checkpoint) in {db['fill_s']:.0f} s; a fresh process loaded the pool in "
         f"{db['load_s']:.1f} s; {100 * db['fill_before']:.2f} % -> {100 * db['fill_after']:.2f} %"),
        ("naive, near 0 % fill", db["naive_0"], "SELECT each candidate, then INSERT, per MAC"),
        ("naive, 99 % fill", db["naive_99"], "same, about 100 SELECTs per MAC"),
    ]
    print(f"MAC allocation, {args.rounds} interleaved rounds (MACs/s)")
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median':>11}  {'best':>11}  notes")
    for name, values, note in rows:
        print(f"{name:<{width}}  {med(values):>11,.0f}  {max(values):>11,.0f}  {note}")
    mem_slow = ratios(mem["this_0"], mem["this_99"])
    db_slow = ratios(db["at_0"], db["at_99"])
    vs_naive_0, vs_naive_99 = ratios(db["at_0"], db["naive_0"]), ratios(db["at_99"], db["naive_99"])
    print(f"slowdown at 99 % fill (per round, median / best): in memory {med(mem_slow):.2f}x / {min(mem_slow):.2f}x, "
          f"persisted {med(db_slow):.2f}x / {min(db_slow):.2f}x (target: within 2x; in memory the empty pool "
          "is the outlier: it takes whole free bytes of the bitmap by slices)")
    print(f"WAL written per persisted MAC (median): {med(db['wal_0']):,.0f} bytes at 0 %, {med(db['wal_99']):,.0f} "
          "bytes at 99 % (at 99 % the free addresses are scattered, so nearly every MAC lands on its own index "
          "leaf pages, each written to the WAL in full after a checkpoint)")
    print(f"persisted vs naive (median): {med(vs_naive_0):.0f}x at 0 %, {med(vs_naive_99):.0f}x at 99 %")
    print(f"duplicate MACs in the database afterwards: {db['duplicates']}")
    print(f"allocator memory per 2^24 range: {allocator_bytes / 2**20:.1f} MiB (a bit per address)")
    result = {
        "rounds": args.rounds,
        "mem_per_s": round(min(med(mem["this_0"]), med(mem["this_99"]))),
        "mem_per_s_best": round(min(max(mem["this_0"]), max(mem["this_99"]))),
        "mem_0_per_s": round(med(mem["this_0"])), "mem_0_per_s_best": round(max(mem["this_0"])),
        "mem_99_per_s": round(med(mem["this_99"])), "mem_99_per_s_best": round(max(mem["this_99"])),
        "persisted_per_s": round(min(med(db["at_0"]), med(db["at_99"]))),
        "persisted_per_s_best": round(min(max(db["at_0"]), max(db["at_99"]))),
        "persisted_0_per_s": round(med(db["at_0"])), "persisted_0_per_s_best": round(max(db["at_0"])),
        "persisted_99_per_s": round(med(db["at_99"])), "persisted_99_per_s_best": round(max(db["at_99"])),
        "naive_per_s": round(med(db["naive_0"])), "naive_per_s_best": round(max(db["naive_0"])),
        "naive_99_per_s": round(med(db["naive_99"])), "naive_99_per_s_best": round(max(db["naive_99"])),
        "slowdown_at_99pct": round(med(db_slow), 3),           # persisted: the figure the target is for
        "slowdown_at_99pct_best": round(min(db_slow), 3),
        "mem_slowdown_at_99pct": round(med(mem_slow), 3),      # in memory the empty pool is the outlier
        "mem_slowdown_at_99pct_best": round(min(mem_slow), 3),
        "persisted_vs_naive": round(med(vs_naive_0), 1), "persisted_vs_naive_99": round(med(vs_naive_99), 1),
        "load_s": round(db["load_s"], 2),
        "duplicates": db["duplicates"],
        "allocator_bytes_per_2^24": int(allocator_bytes),
    }
    if "old_0" in mem:
        for f in (0, 99):
            r = ratios(mem[f"this_{f}"], mem[f"old_{f}"])
            print(f"this / old allocator at {f} % fill, per round: median {med(r):.2f}, best {max(r):.2f}")
            result[f"old_mem_{f}_per_s"] = round(med(mem[f"old_{f}"]))
            result[f"old_mem_{f}_per_s_best"] = round(max(mem[f"old_{f}"]))
            result[f"mem_{f}_vs_old"] = round(med(r), 3)
            result[f"mem_{f}_vs_old_best"] = round(max(r), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
