"""Four manager processes allocating from one pool at once: no duplicate, nothing lost."""
from __future__ import annotations

import multiprocessing

import psycopg

from manager.macpool.ranges import MacRange
from manager.service.macpools import MacPoolService, allocate_macs
from manager.store.migrations import apply_migrations

PROCESSES = 4
ROUNDS = 40
BATCH = 25


def _allocate_in_a_process(dsn: str, barrier, rounds: int, batch: int) -> list[str]:
    """One manager process: its own connection and its own in-memory allocator."""
    got: list[str] = []
    with psycopg.connect(dsn) as conn:
        cid = conn.execute("SELECT id FROM clusters WHERE name = 'Default'").fetchone()[0]
        conn.commit()
        barrier.wait()
        for _ in range(rounds):
            got.extend(allocate_macs(conn, cid, batch))
            conn.commit()
    return got


def test_four_processes_allocating_concurrently_get_no_duplicates(empty_db):
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
    from psycopg_pool import ConnectionPool
    with ConnectionPool(empty_db, min_size=1, max_size=1) as pool:
        service = MacPoolService(pool)
        # exactly enough addresses, so the last rounds must find what the others left
        size = PROCESSES * ROUNDS * BATCH
        service.create(name="race", datacenter="", ranges=[MacRange(0x02_00_00_00_00_00, 0x02_00_00_00_00_00 + size - 1)],
                       allow_duplicates=False)
        service.set_cluster_pool("Default", "race")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as mp:
            barrier = mp.Barrier(PROCESSES)
            with ctx.Pool(PROCESSES) as workers:
                results = workers.starmap(_allocate_in_a_process,
                                          [(empty_db, barrier, ROUNDS, BATCH)] * PROCESSES)
        everything = [m for r in results for m in r]
        assert all(len(r) == ROUNDS * BATCH for r in results)
        assert len(everything) == len(set(everything)), "a MAC was handed out twice"
        view = service.get("race")
        assert view.used == len(everything) == size
        assert view.free == 0
