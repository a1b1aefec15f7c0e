"""Named queries on MAC pools, their ranges, the clusters using them and the MACs in use.

Every function runs on the caller's connection and inside the caller's
transaction. Uniqueness is the database's job (see db/002_mac_pools.sql); the
functions here report what it refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

from virtfleet.errors import AlreadyExists, NotFound

from ..macpool.ranges import MacRange


@dataclass(frozen=True)
class PoolRecord:
    id: int
    datacenter_id: int
    datacenter: str
    name: str
    allow_duplicates: bool
    is_default: bool
    version: int
    ranges: list[MacRange]


@dataclass(frozen=True)
class ClusterRef:
    id: int
    name: str
    datacenter_id: int
    mac_pool_id: int


@dataclass(frozen=True)
class PoolCounts:
    uses: int            # rows in use (a duplicated MAC counts once per use)
    in_ranges: int       # distinct MACs inside the ranges
    custom: int          # uses outside the ranges
    clusters: list[str]


_SELECT_POOL = """
    SELECT p.id, p.datacenter_id, d.name, p.name, p.allow_duplicates, p.is_default, p.version,
           coalesce((SELECT array_agg(array[r.first, r.last] ORDER BY r.first)
                       FROM mac_pool_ranges r WHERE r.pool_id = p.id), '{}')
      FROM mac_pools p JOIN datacenters d ON d.id = p.datacenter_id
"""


def _pool(row) -> PoolRecord:
    *head, ranges = row
    return PoolRecord(*head, ranges=[MacRange(a, b) for a, b in ranges])


def list_pools(conn: psycopg.Connection) -> list[PoolRecord]:
    return [_pool(r) for r in conn.execute(_SELECT_POOL + " ORDER BY d.name, p.name")]


def get_pool(conn: psycopg.Connection, name: str, datacenter: str = "Default", *, lock: str = "") -> PoolRecord:
    """`lock`: '' or 'FOR SHARE' / 'FOR UPDATE' (of the pool row)."""
    row = conn.execute(_SELECT_POOL + f" WHERE p.name = %s AND d.name = %s {lock and lock + ' OF p'}",
                       (name, datacenter)).fetchone()
    if row is None:
        raise NotFound(f"MAC pool {name!r} does not exist in datacenter {datacenter}")
    return _pool(row)


def get_pool_by_id(conn: psycopg.Connection, pool_id: int, *, lock: str = "") -> PoolRecord:
    row = conn.execute(_SELECT_POOL + f" WHERE p.id = %s {lock and lock + ' OF p'}", (pool_id,)).fetchone()
    if row is None:
        raise NotFound(f"MAC pool #{pool_id} does not exist")
    return _pool(row)


def datacenter_id(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM datacenters WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"datacenter {name!r} does not exist")
    return row[0]


def insert_pool(conn: psycopg.Connection, *, name: str, datacenter_id: int, allow_duplicates: bool,
                ranges: list[MacRange]) -> int:
    try:
        with conn.transaction():
            pool_id = conn.execute(
                "INSERT INTO mac_pools (datacenter_id, name, allow_duplicates) VALUES (%s, %s, %s) RETURNING id",
                (datacenter_id, name, allow_duplicates)).fetchone()[0]
            _insert_ranges(conn, pool_id, ranges)
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"MAC pool {name!r} already exists") from None
    return pool_id


def _insert_ranges(conn: psycopg.Connection, pool_id: int, ranges: list[MacRange]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO mac_pool_ranges (pool_id, first, last) VALUES (%s, %s, %s)",
                        [(pool_id, r.first, r.last) for r in ranges])


def replace_ranges(conn: psycopg.Connection, pool_id: int, ranges: list[MacRange]) -> None:
    conn.execute("DELETE FROM mac_pool_ranges WHERE pool_id = %s", (pool_id,))
    _insert_ranges(conn, pool_id, ranges)
    bump_version(conn, pool_id)


def bump_version(conn: psycopg.Connection, pool_id: int) -> None:
    conn.execute("UPDATE mac_pools SET version = version + 1 WHERE id = %s", (pool_id,))


def delete_pool(conn: psycopg.Connection, pool_id: int) -> None:
    conn.execute("DELETE FROM mac_pools WHERE id = %s", (pool_id,))


# -- clusters ---------------------------------------------------------------------------------


def get_cluster(conn: psycopg.Connection, name: str, *, lock: str = "") -> ClusterRef:
    row = conn.execute(f"SELECT id, name, datacenter_id, mac_pool_id FROM clusters WHERE name = %s {lock}",
                       (name,)).fetchone()
    if row is None:
        raise NotFound(f"cluster {name!r} does not exist")
    return ClusterRef(*row)


def pool_of_cluster(conn: psycopg.Connection, cluster_id: int, *, lock: str = "") -> PoolRecord:
    """The pool a cluster uses; `lock` also locks both rows (FOR SHARE keeps ranges and the pool fixed)."""
    row = conn.execute(
        _SELECT_POOL + f" JOIN clusters c ON c.mac_pool_id = p.id WHERE c.id = %s {lock and lock + ' OF p, c'}",
        (cluster_id,)).fetchone()
    if row is None:
        raise NotFound(f"cluster #{cluster_id} does not exist")
    return _pool(row)


def set_cluster_pool(conn: psycopg.Connection, cluster_id: int, pool: PoolRecord) -> int:
    """Point the cluster and each of its MACs at `pool`; returns how many MACs moved."""
    conn.execute("UPDATE clusters SET mac_pool_id = %s WHERE id = %s", (pool.id, cluster_id))
    return conn.execute(
        "UPDATE mac_leases SET pool_id = %(pool)s, shared = %(shared)s WHERE cluster_id = %(cluster)s",
        {"pool": pool.id, "shared": pool.allow_duplicates, "cluster": cluster_id}).rowcount


def macs_used_elsewhere(conn: psycopg.Connection, cluster_id: int) -> int:
    """MACs of this cluster that some other use in the datacenter also holds."""
    return conn.execute(
        """SELECT count(DISTINCT l.mac) FROM mac_leases l
            WHERE l.cluster_id = %s
              AND EXISTS (SELECT 1 FROM mac_leases o
                           WHERE o.datacenter_id = l.datacenter_id AND o.mac = l.mac AND o.seq <> l.seq)""",
        (cluster_id,)).fetchone()[0]


# -- MACs in use ------------------------------------------------------------------------------


def insert_free(conn: psycopg.Connection, pool: PoolRecord, cluster_id: int, macs: list[int]) -> list[int]:
    """First uses of `macs`, one statement; returns those inserted (the rest were in use already)."""
    rows = conn.execute(
        """INSERT INTO mac_leases (datacenter_id, mac, seq, pool_id, cluster_id, shared)
           SELECT %(dc)s, m, 0, %(pool)s, %(cluster)s, %(shared)s FROM unnest(%(macs)s::bigint[]) AS m
           ON CONFLICT DO NOTHING RETURNING mac""",
        {"dc": pool.datacenter_id, "pool": pool.id, "cluster": cluster_id, "shared": pool.allow_duplicates,
         "macs": macs}).fetchall()
    return [r[0] for r in rows]


def insert_use(conn: psycopg.Connection, pool: PoolRecord, cluster_id: int, mac: int) -> None:
    """One more use of `mac`: seq 0 when free, the next seq when the pool shares it (the database decides)."""
    seq = 0
    if pool.allow_duplicates:
        seq = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM mac_leases WHERE datacenter_id = %s AND mac = %s",
                           (pool.datacenter_id, mac)).fetchone()[0]
    conn.execute(
        """INSERT INTO mac_leases (datacenter_id, mac, seq, pool_id, cluster_id, shared)
           VALUES (%(dc)s, %(mac)s, %(seq)s, %(pool)s, %(cluster)s, %(shared)s)""",
        {"dc": pool.datacenter_id, "mac": mac, "seq": seq, "pool": pool.id, "cluster": cluster_id,
         "shared": pool.allow_duplicates})


def holder(conn: psycopg.Connection, datacenter_id: int, mac: int) -> tuple[str, str] | None:
    """(cluster, pool) of the first use of `mac`, for error messages."""
    return conn.execute(
        """SELECT c.name, p.name FROM mac_leases l JOIN clusters c ON c.id = l.cluster_id
                  JOIN mac_pools p ON p.id = l.pool_id
            WHERE l.datacenter_id = %s AND l.mac = %s ORDER BY l.seq LIMIT 1""",
        (datacenter_id, mac)).fetchone()


def delete_use(conn: psycopg.Connection, datacenter_id: int, cluster_id: int, mac: int) -> bool:
    """Remove one use of `mac` by the cluster; False when it holds none.

    The row with the highest seq goes; when that row belongs to another
    cluster, our row takes its cluster. So the seq-0 use that other uses
    point at is never deleted while they exist.
    """
    ours = conn.execute(
        """SELECT seq FROM mac_leases WHERE datacenter_id = %s AND mac = %s AND cluster_id = %s
            ORDER BY seq DESC LIMIT 1 FOR UPDATE""", (datacenter_id, mac, cluster_id)).fetchone()
    if ours is None:
        return False
    last = conn.execute(
        """DELETE FROM mac_leases WHERE (datacenter_id, mac, seq) =
               (SELECT datacenter_id, mac, seq FROM mac_leases WHERE datacenter_id = %s AND mac = %s
                 ORDER BY seq DESC LIMIT 1 FOR UPDATE)
           RETURNING seq, cluster_id""", (datacenter_id, mac)).fetchone()
    if last[0] != ours[0]:
        conn.execute("UPDATE mac_leases SET cluster_id = %s WHERE datacenter_id = %s AND mac = %s AND seq = %s",
                     (last[1], datacenter_id, mac, ours[0]))
    return True


def used_macs(conn: psycopg.Connection, pool: PoolRecord, r: MacRange) -> list[int]:
    """Distinct MACs in use in the pool within `r`, ascending: one primary-key range scan, one array."""
    row = conn.execute(
        """SELECT coalesce(array_agg(DISTINCT mac ORDER BY mac), '{}') FROM mac_leases
            WHERE datacenter_id = %s AND mac BETWEEN %s AND %s AND pool_id = %s""",
        (pool.datacenter_id, r.first, r.last, pool.id)).fetchone()
    return row[0]


def last_allocated(conn: psycopg.Connection, pool_id: int) -> int | None:
    row = conn.execute("SELECT mac FROM mac_leases WHERE pool_id = %s ORDER BY allocated_at DESC, mac DESC LIMIT 1",
                       (pool_id,)).fetchone()
    return row[0] if row else None


def in_use_within(conn: psycopg.Connection, pool: PoolRecord, r: MacRange) -> int:
    return conn.execute(
        "SELECT count(*) FROM mac_leases WHERE datacenter_id = %s AND mac BETWEEN %s AND %s AND pool_id = %s",
        (pool.datacenter_id, r.first, r.last, pool.id)).fetchone()[0]


_COUNTS = """
    SELECT count(*),
           count(DISTINCT l.mac) FILTER (WHERE inside),
           count(*) FILTER (WHERE NOT inside)
      FROM (SELECT l.mac, EXISTS (SELECT 1 FROM mac_pool_ranges r WHERE r.pool_id = l.pool_id
                                   AND l.mac BETWEEN r.first AND r.last) AS inside
              FROM mac_leases l WHERE l.pool_id = {pool}) AS l"""


def get_pool_with_counts(conn: psycopg.Connection, name: str, datacenter: str = "Default",
                         ) -> tuple[PoolRecord, PoolCounts]:
    """The pool and its counts in ONE statement: a consistent view in one round trip (`FleetPool.reading`)."""
    row = conn.execute(
        f"""SELECT pool.*, c.*, coalesce((SELECT array_agg(name ORDER BY name) FROM clusters
                                            WHERE mac_pool_id = pool.id), '{{}}')
              FROM ({_SELECT_POOL} WHERE p.name = %s AND d.name = %s) AS pool (id, datacenter_id, datacenter,
                    name, allow_duplicates, is_default, version, ranges)
              CROSS JOIN LATERAL ({_COUNTS.format(pool="pool.id")}) AS c""", (name, datacenter)).fetchone()
    if row is None:
        raise NotFound(f"MAC pool {name!r} does not exist in datacenter {datacenter}")
    *pool, uses, in_ranges, custom, clusters = row
    return _pool(pool), PoolCounts(uses, in_ranges, custom, list(clusters))


def counts(conn: psycopg.Connection, pool_id: int) -> PoolCounts:
    uses, in_ranges, custom = conn.execute(_COUNTS.format(pool="%s"), (pool_id,)).fetchone()
    clusters = [r[0] for r in conn.execute("SELECT name FROM clusters WHERE mac_pool_id = %s ORDER BY name",
                                           (pool_id,))]
    return PoolCounts(uses, in_ranges, custom, clusters)


def record_event(conn: psycopg.Connection, pool_id: int, kind: str, message: str) -> None:
    conn.execute("INSERT INTO mac_pool_events (pool_id, kind, message) VALUES (%s, %s, %s)",
                 (pool_id, kind, message))


def events(conn: psycopg.Connection, pool_id: int) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT kind, message FROM mac_pool_events WHERE pool_id = %s ORDER BY id", (pool_id,))]
