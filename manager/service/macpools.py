"""MAC pools: allocation for vNICs, and the admin's pool operations.

The module-level functions (`allocate_macs`, `claim_mac`, `release_macs`,
`pool_for_cluster`) run on the caller's connection inside the caller's
transaction, so a rollback returns the MACs and a release takes effect only
when the transaction that frees them commits.

Each manager process keeps an in-memory allocator per pool, a cache of which
addresses are in use. The database is the truth: a candidate the cache thinks
free but another process took is skipped by `ON CONFLICT DO NOTHING`, and the
unique primary key makes a duplicate impossible whatever the cache says. The
cache never marks a released MAC free; it learns of releases only when it is
reloaded (when it looks exhausted, or the pool changed), which is also what
keeps freed MACs from being handed out again at once. Concurrent allocations
from several processes share only row locks on the pool and cluster rows
(FOR SHARE, compatible with each other) and wait on each other only for the
very MACs both tried to take.
"""
from __future__ import annotations

import logging
import random
import re
import threading
from dataclasses import dataclass
from typing import Callable

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet import macaddr, rules
from virtfleet.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, shown
from virtfleet.macaddr import format_mac

from ..macpool.allocator import MacAllocator, PoolExhausted
from ..macpool.ranges import MacRange, gaps, merged_within_limit, overlaps, subtract_range, unicast_count
from ..store import macpools as store
from ..store.database import reading
from .readmodel import ReadModel
from ..store.macpools import PoolRecord

log = logging.getLogger(__name__)

MAX_BATCH = 100_000          # MACs one allocate call may ask for
_RETRIES = 8                 # concurrent claims of one shared MAC before giving up
_CONFLICTS_BEFORE_RELOAD = 3 # rounds that met MACs other processes took before reloading the cache
_warn_free_percent = 5.0
_record_system: Callable[..., None] = lambda *args, **kwargs: None   # the audit trail's system events


def configure(*, warn_free_percent: float, record_system: Callable[..., None] | None = None) -> None:
    """Set by the manager from its config (`mac_pool_warn_free_percent`) and its event recorder."""
    global _warn_free_percent, _record_system
    _warn_free_percent = float(warn_free_percent)
    if record_system is not None:
        _record_system = record_system


# -- the per-process cache ---------------------------------------------------------------------


@dataclass
class _Cached:
    version: int
    allocator: MacAllocator
    lock: threading.Lock


_caches: dict[tuple[str, int], _Cached] = {}
_caches_lock = threading.Lock()


def _key(conn: psycopg.Connection, pool: PoolRecord) -> tuple[str, int]:
    """Pool ids repeat across databases (tests run several managers in one process)."""
    info = conn.info
    return (f"{info.host}:{info.port}/{info.dbname}", pool.id)


_LOAD_CHUNK = 1 << 20   # addresses per query when loading a pool's used set


def _load(conn: psycopg.Connection, pool: PoolRecord) -> _Cached:
    """The pool's used set from the database, a chunk of addresses at a time."""
    allocator = MacAllocator(pool.ranges)
    for seg in allocator.segments():
        for start in range(seg.first, seg.last + 1, _LOAD_CHUNK):
            chunk = MacRange(start, min(start + _LOAD_CHUNK - 1, seg.last))
            allocator.claim_many(store.used_macs(conn, pool, chunk))
    for gap in gaps(pool.ranges):       # custom MACs, claimed outside the ranges
        for mac in store.used_macs(conn, pool, gap):
            allocator.claim(mac)
    last = store.last_allocated(conn, pool.id)
    if last is not None:
        allocator.start_after(last)
    cached = _Cached(pool.version, allocator, threading.Lock())
    with _caches_lock:
        _caches[_key(conn, pool)] = cached
    return cached


def _cache(conn: psycopg.Connection, pool: PoolRecord) -> _Cached:
    with _caches_lock:
        cached = _caches.get(_key(conn, pool))
    if cached is None or cached.version != pool.version:
        cached = _load(conn, pool)
    return cached


def forget_cache() -> None:
    """Drop every cached pool (tests simulating a fresh manager process)."""
    with _caches_lock:
        _caches.clear()


def forget_pool(conn: psycopg.Connection, pool: PoolRecord) -> None:
    """Free a deleted pool's allocator: up to 2 MiB per range, kept for the process's life otherwise."""
    with _caches_lock:
        _caches.pop(_key(conn, pool), None)


def cached_pools() -> int:
    """How many pools this process holds an allocator for."""
    with _caches_lock:
        return len(_caches)


def _ranges_within_limit(ranges: list[MacRange], field: str) -> list[MacRange]:
    merged = merged_within_limit(ranges, field)
    rules.count_within(len(merged), rules.MAX_RANGES_PER_POOL, field, "ranges (after merging) per MAC pool")
    return merged


# -- what vNICs call, inside the caller's transaction ------------------------------------------


def pool_for_cluster(conn: psycopg.Connection, cluster_id: int) -> PoolRecord:
    return store.pool_of_cluster(conn, cluster_id)


def allocate_macs(conn: psycopg.Connection, cluster_id: int, count: int) -> list[str]:
    """`count` free MACs from the cluster's pool, ascending, as "aa:bb:cc:dd:ee:ff"."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgument("count", f"must be between 1 and {MAX_BATCH}, got {count}")
    # The first statement opens the caller's transaction if none is open yet, so the block below is
    # a savepoint inside it: a failure leaves the caller's transaction as it was.
    pool = store.pool_of_cluster(conn, cluster_id, lock="FOR SHARE")
    with conn.transaction():
        cached = _cache(conn, pool)
        got = _allocate(conn, pool, cluster_id, count, cached)
        _warn_if_low(conn, pool, cached, count)
    return [format_mac(m) for m in sorted(got)]


def _allocate(conn: psycopg.Connection, pool: PoolRecord, cluster_id: int, count: int, cached: _Cached) -> list[int]:
    """Each round either inserts candidates or learns they were taken, so the loop ends."""
    got: list[int] = []
    reloaded = False
    conflicts = 0
    while len(got) < count:
        need = count - len(got)
        with cached.lock:
            try:
                candidates = cached.allocator.allocate(need)
            except PoolExhausted:
                candidates = None
        if candidates is None:
            if reloaded:
                raise _exhausted(pool, count, cached.allocator)
            cached = _load(conn, pool)   # releases and rollbacks since the last load come back
            reloaded = True
            continue
        inserted = _insert(conn, pool, cluster_id, candidates)
        got.extend(inserted)
        if len(inserted) < len(candidates):
            log.debug("MAC pool %s: %d of %d candidates were taken by another manager meanwhile",
                      pool.name, len(candidates) - len(inserted), len(candidates))
            conflicts += 1
            if conflicts == _CONFLICTS_BEFORE_RELOAD and not reloaded:
                cached = _load(conn, pool)   # the cache is far behind the others: catch up at once
                reloaded = True
            with cached.lock:   # another process allocates here: continue somewhere else
                cached.allocator.start_after(random.choice(candidates) + random.randrange(1 << 16))
    return got


def _insert(conn: psycopg.Connection, pool: PoolRecord, cluster_id: int, candidates: list[int]) -> list[int]:
    try:
        with conn.transaction():
            return store.insert_free(conn, pool, cluster_id, candidates)
    except psycopg.errors.DeadlockDetected:
        return []   # two processes took each other's candidates in opposite orders: try others


def _exhausted(pool: PoolRecord, count: int, allocator: MacAllocator) -> ResourceExhausted:
    u = allocator.usage()
    return ResourceExhausted(f"MAC pool {pool.name!r} is exhausted: {count} MAC(s) requested, {u.free} of its "
                             f"{u.total} addresses free; add a range (`virtfleet macpool add-range {pool.name} …`)")


def _warn_if_low(conn: psycopg.Connection, pool: PoolRecord, cached: _Cached, allocated: int) -> None:
    """Once per crossing of the threshold: the cache only over-counts what is in use, so the database confirms."""
    total = cached.allocator.total
    threshold = total * _warn_free_percent / 100.0
    free_now = cached.allocator.free
    crossed_low = free_now <= threshold < free_now + allocated
    crossed_empty = free_now == 0 < allocated
    if not (crossed_low or crossed_empty):
        return
    c = store.counts(conn, pool.id)
    free = total - c.in_ranges
    if free > threshold:
        return
    if crossed_empty and free == 0:
        kind, message = "empty", f"MAC pool {pool.name!r} is empty: all {total} addresses are in use"
    elif crossed_low:
        kind, message = "low_free", (f"MAC pool {pool.name!r} is running low: {free} of {total} addresses free "
                                     f"(warning at {_warn_free_percent:g} %)")
    else:
        return
    log.warning("%s", message)
    store.record_event(conn, pool.id, kind, message)
    _record_system("macpool.empty" if kind == "empty" else "macpool.low", "macpool", pool.name,
                   {"datacenter": pool.datacenter, "free": free, "total": total,
                    "warn_free_percent": _warn_free_percent}, message)


def _unicast(text: str, field: str) -> int:
    return macaddr.parse(macaddr.unicast_field(text, field))


def claim_mac(conn: psycopg.Connection, cluster_id: int, mac: str) -> str:
    """Take one explicit MAC (even outside the ranges): free, or the pool allows duplicates."""
    value = _unicast(mac, "mac")
    pool = store.pool_of_cluster(conn, cluster_id, lock="FOR SHARE")
    with conn.transaction():
        for _ in range(_RETRIES):
            try:
                with conn.transaction():
                    store.insert_use(conn, pool, cluster_id, value)
                break
            except psycopg.errors.UniqueViolation:
                if not pool.allow_duplicates:
                    raise _in_use(conn, pool, value) from None
                # a concurrent claim took the same seq: count again
            except psycopg.errors.ForeignKeyViolation:
                raise _in_use(conn, pool, value) from None
        else:
            raise FailedPrecondition(f"MAC {format_mac(value)}: too many concurrent claims; try again")
        cached = _cache(conn, pool)
        with cached.lock:
            cached.allocator.claim(value)
    return format_mac(value)


def _in_use(conn: psycopg.Connection, pool: PoolRecord, mac: int) -> AlreadyExists:
    who = store.holder(conn, pool.datacenter_id, mac)
    where = f" by cluster {who[0]} (MAC pool {who[1]})" if who else ""
    if who and who[1] != pool.name:
        why = "only MACs of one pool may be shared, and only when that pool allows duplicates"
    else:
        why = f"MAC pool {pool.name!r} forbids duplicates"
    return AlreadyExists(f"MAC {format_mac(mac)} is already in use{where}; {why}")


def release_macs(conn: psycopg.Connection, cluster_id: int, macs: list[str]) -> None:
    """Give back one use of each MAC; all or nothing. Free for others once the caller commits."""
    values = [_unicast(m, f"macs[{i}]") for i, m in enumerate(macs)]
    pool = store.pool_of_cluster(conn, cluster_id, lock="FOR SHARE")
    with conn.transaction():
        for i, value in enumerate(values):
            if not store.delete_use(conn, pool.datacenter_id, cluster_id, value):
                raise NotFound(f"macs[{i}]: MAC {format_mac(value)} is not in use by this cluster")


# -- the admin's operations ---------------------------------------------------------------------


@dataclass(frozen=True)
class PoolView:
    pool: PoolRecord
    total: int
    used: int
    free: int
    custom: int
    clusters: list[str]


def _view(conn: psycopg.Connection, pool: PoolRecord, c: store.PoolCounts | None = None) -> PoolView:
    c = c or store.counts(conn, pool.id)
    total = unicast_count(pool.ranges)
    return PoolView(pool, total=total, used=c.uses, free=total - c.in_ranges, custom=c.custom, clusters=c.clusters)


def _check_name(name: str, field: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name or ""):
        raise InvalidArgument(field, f"{shown(name)}: 1-63 letters, digits, '_', '.', '-', starting with a letter or digit")


# What a pool's view is made of; a lease taken or returned changes its counts.
POOL_TABLES = ("mac_pools", "mac_pool_ranges", "mac_leases", "clusters", "datacenters")


def _load_views(conn: psycopg.Connection) -> dict[tuple[str, str], PoolView]:
    return {(p.datacenter, p.name): _view(conn, p) for p in store.list_pools(conn)}


class MacPoolService:
    def __init__(self, pool: ConnectionPool, read_model: ReadModel | None = None) -> None:
        self._db = pool
        self._views = read_model.group("macpools", POOL_TABLES, _load_views) if read_model else None

    def _run(self, fn: Callable[[psycopg.Connection], object]):
        with self._db.connection() as conn:
            with conn.transaction():
                return fn(conn)

    def create(self, *, name: str, datacenter: str, ranges: list[MacRange], allow_duplicates: bool) -> PoolView:
        _check_name(name, "pool.name")
        if not ranges:
            raise InvalidArgument("pool.ranges", "a pool needs at least one range")

        def do(conn):
            dc = store.datacenter_id(conn, datacenter or "Default")
            store.insert_pool(conn, name=name, datacenter_id=dc, allow_duplicates=allow_duplicates,
                              ranges=_ranges_within_limit(ranges, "pool.ranges"))
            return _view(conn, store.get_pool(conn, name, datacenter or "Default"))
        return self._run(do)

    def list(self) -> list[PoolView]:
        return self._run(lambda conn: [_view(conn, p) for p in store.list_pools(conn)])

    def get(self, name: str, datacenter: str = "") -> PoolView:
        views = self._views.get() if self._views is not None else None
        if views is not None and (found := views.get((datacenter or "Default", name))) is not None:
            return found
        with reading(self._db) as conn:     # also the one place that says which pool does not exist
            return _view(conn, *store.get_pool_with_counts(conn, name, datacenter or "Default"))

    def delete(self, name: str, datacenter: str = "") -> None:
        def do(conn):
            pool = store.get_pool(conn, name, datacenter or "Default", lock="FOR UPDATE")
            if pool.is_default:
                raise FailedPrecondition(f"MAC pool {name!r} is the datacenter's default pool and cannot be deleted")
            c = store.counts(conn, pool.id)
            if c.clusters:
                raise FailedPrecondition(f"MAC pool {name!r} is used by {len(c.clusters)} cluster(s): "
                                         f"{', '.join(c.clusters)}; move them to another pool first")
            store.delete_pool(conn, pool.id)
            forget_pool(conn, pool)     # before the commit: a rollback only costs a reload
        self._run(do)

    def add_range(self, name: str, r: MacRange, datacenter: str = "") -> PoolView:
        def do(conn):
            pool = store.get_pool(conn, name, datacenter or "Default", lock="FOR UPDATE")
            store.replace_ranges(conn, pool.id, _ranges_within_limit([*pool.ranges, r], "range"))
            return _view(conn, store.get_pool_by_id(conn, pool.id))
        return self._run(do)

    def remove_range(self, name: str, r: MacRange, datacenter: str = "") -> PoolView:
        """Remove [from, to] from the pool's ranges (a whole range, or shrinking one); refused while in use."""
        def do(conn):
            pool = store.get_pool(conn, name, datacenter or "Default", lock="FOR UPDATE")
            if not overlaps(pool.ranges, r):
                raise InvalidArgument("range", f"{r} overlaps no range of MAC pool {name!r}")
            in_use = store.in_use_within(conn, pool, r)
            if in_use:
                raise FailedPrecondition(f"{in_use} MAC(s) in use in {r} of MAC pool {name!r}; release them first")
            remaining = subtract_range(pool.ranges, r)
            if not remaining:
                raise FailedPrecondition(f"{r} is all of MAC pool {name!r}; a pool keeps at least one range")
            store.replace_ranges(conn, pool.id, remaining)
            return _view(conn, store.get_pool_by_id(conn, pool.id))
        return self._run(do)

    def set_cluster_pool(self, cluster: str, pool_name: str) -> tuple[PoolView, int]:
        """Move the cluster and all its MACs to another pool of its datacenter, or change nothing."""
        def do(conn):
            c = store.get_cluster(conn, cluster, lock="FOR UPDATE")
            old = store.get_pool_by_id(conn, c.mac_pool_id, lock="FOR UPDATE")
            new = store.get_pool(conn, pool_name, old.datacenter, lock="FOR UPDATE")
            if new.id == old.id:
                return _view(conn, new), 0
            if not new.allow_duplicates:
                dup = store.macs_used_elsewhere(conn, c.id)
                if dup:
                    raise FailedPrecondition(
                        f"moving cluster {cluster} to MAC pool {pool_name!r} would duplicate {dup} MAC(s) that are "
                        f"also in use elsewhere, and {pool_name!r} forbids duplicates; nothing changed")
            try:
                with conn.transaction():
                    moved = store.set_cluster_pool(conn, c.id, new)
            except (psycopg.errors.IntegrityError) as exc:
                raise FailedPrecondition(
                    f"moving cluster {cluster} to MAC pool {pool_name!r} would split MACs it shares with other "
                    f"clusters of pool {old.name!r} ({exc.diag.constraint_name}); nothing changed") from None
            store.bump_version(conn, old.id)
            store.bump_version(conn, new.id)
            return _view(conn, store.get_pool_by_id(conn, new.id)), moved
        return self._run(do)

    def events(self, name: str, datacenter: str = "") -> list[tuple[str, str]]:
        return self._run(lambda conn: store.events(conn, store.get_pool(conn, name, datacenter or "Default").id))
