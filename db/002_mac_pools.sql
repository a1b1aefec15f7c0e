-- MAC address pools: ranges, the pool each cluster uses, and every MAC in use.
--
-- MACs are stored as bigint (48 bits) so range arithmetic stays in integers.
-- The database, not the allocator, guarantees "never a duplicate": see mac_leases.

CREATE TABLE mac_pools (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    datacenter_id     bigint NOT NULL REFERENCES datacenters ON DELETE RESTRICT,
    name              text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    allow_duplicates  boolean NOT NULL DEFAULT false,
    is_default        boolean NOT NULL DEFAULT false,
    -- bumped whenever ranges or the set of clusters change, so every manager
    -- process knows its in-memory view of the pool is stale
    version           bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (datacenter_id, name),
    -- targets of composite foreign keys: a cluster's pool is in its own datacenter,
    -- and a lease repeats its pool's datacenter and duplicate policy
    UNIQUE (id, datacenter_id),
    UNIQUE (id, datacenter_id, allow_duplicates)
);

CREATE UNIQUE INDEX mac_pools_one_default ON mac_pools (datacenter_id) WHERE is_default;

-- Ranges of a pool, kept merged (no two overlap or touch) by the manager.
CREATE TABLE mac_pool_ranges (
    pool_id  bigint NOT NULL REFERENCES mac_pools ON DELETE CASCADE,
    first    bigint NOT NULL CHECK (first BETWEEN 0 AND 281474976710655),
    last     bigint NOT NULL CHECK (last BETWEEN 0 AND 281474976710655),
    CHECK (first <= last),
    CHECK (last - first < 16777216),
    PRIMARY KEY (pool_id, first)
);

-- One row per use of a MAC. Uniqueness in the datacenter is the primary key
-- (datacenter_id, mac, seq): a use in a pool that forbids duplicates always has
-- seq 0, so a second use of that MAC anywhere in the datacenter needs seq > 0,
-- which only a pool allowing duplicates may hold (CHECK + the pool-policy key),
-- and only while the seq-0 use is in that same pool (mac_leases_shared_in_one_pool,
-- below). The primary key is the only index ordered by MAC: at 99 % fill every
-- allocated MAC lands on a leaf page of its own, so each such index costs a page.
CREATE TABLE mac_leases (
    datacenter_id  bigint NOT NULL,
    mac            bigint NOT NULL CHECK (mac BETWEEN 0 AND 281474976710655 AND (mac >> 40) & 1 = 0),
    seq            integer NOT NULL DEFAULT 0 CHECK (seq >= 0),
    pool_id        bigint NOT NULL,
    cluster_id     bigint NOT NULL REFERENCES clusters ON DELETE RESTRICT,
    shared         boolean NOT NULL DEFAULT false,
    allocated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (datacenter_id, mac, seq),
    CHECK (seq = 0 OR shared),
    CONSTRAINT mac_leases_pool_policy FOREIGN KEY (pool_id, datacenter_id, shared)
        REFERENCES mac_pools (id, datacenter_id, allow_duplicates)
);

CREATE INDEX mac_leases_by_pool ON mac_leases (pool_id);
CREATE INDEX mac_leases_by_cluster ON mac_leases (cluster_id);

-- The rule a foreign key from each shared use to the seq-0 use of its pool would
-- state, checked the way PostgreSQL checks foreign keys (locking the seq-0 row),
-- but only for the rows it concerns: the exclusive uses that bulk allocation
-- inserts (seq 0) fire nothing, and need no second index ordered by MAC.
CREATE FUNCTION mac_leases_shared_in_one_pool() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row mac_leases;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row := OLD;
    ELSE
        row := NEW;
    END IF;
    IF TG_OP <> 'DELETE' AND row.seq > 0 THEN
        PERFORM 1 FROM mac_leases
          WHERE datacenter_id = row.datacenter_id AND mac = row.mac AND seq = 0 AND pool_id = row.pool_id
          FOR SHARE;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('MAC %s: a second use must be in the pool of its first use', row.mac),
                CONSTRAINT = 'mac_leases_shared_in_one_pool', TABLE = 'mac_leases';
        END IF;
    ELSIF row.seq = 0 THEN
        -- the first use moved to another pool, or went away, while other uses remain
        PERFORM 1 FROM mac_leases
          WHERE datacenter_id = row.datacenter_id AND mac = row.mac AND seq > 0
            AND (TG_OP = 'DELETE' OR pool_id <> row.pool_id);
        IF FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('MAC %s: other uses depend on its first use', row.mac),
                CONSTRAINT = 'mac_leases_shared_in_one_pool', TABLE = 'mac_leases';
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER mac_leases_shared_insert AFTER INSERT ON mac_leases
    FOR EACH ROW WHEN (NEW.seq > 0) EXECUTE FUNCTION mac_leases_shared_in_one_pool();
CREATE CONSTRAINT TRIGGER mac_leases_shared_update AFTER UPDATE OF pool_id, datacenter_id, mac, seq ON mac_leases
    FOR EACH ROW EXECUTE FUNCTION mac_leases_shared_in_one_pool();
CREATE CONSTRAINT TRIGGER mac_leases_shared_delete AFTER DELETE ON mac_leases
    FOR EACH ROW WHEN (OLD.seq = 0 AND OLD.shared) EXECUTE FUNCTION mac_leases_shared_in_one_pool();

-- Warnings worth keeping: a pool running low on free addresses.
CREATE TABLE mac_pool_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id   bigint NOT NULL REFERENCES mac_pools ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    message   text NOT NULL
);

-- A datacenter's default pool: 65,536 locally administered unicast addresses
-- under a random 32-bit prefix (first octet: bit 1 set, bit 0 clear).
CREATE FUNCTION create_default_mac_pool(dc bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pool bigint;
    prefix bigint := ((floor(random() * 256)::bigint & 252) | 2) << 24
                     | floor(random() * 16777216)::bigint;
BEGIN
    INSERT INTO mac_pools (datacenter_id, name, is_default) VALUES (dc, 'Default', true) RETURNING id INTO pool;
    INSERT INTO mac_pool_ranges (pool_id, first, last) VALUES (pool, prefix << 16, (prefix << 16) + 65535);
    RETURN pool;
END $$;

CREATE FUNCTION mac_pools_for_new_datacenter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM create_default_mac_pool(NEW.id);
    RETURN NEW;
END $$;

CREATE TRIGGER datacenters_default_mac_pool AFTER INSERT ON datacenters
    FOR EACH ROW EXECUTE FUNCTION mac_pools_for_new_datacenter();

SELECT create_default_mac_pool(id) FROM datacenters;

-- Each cluster uses exactly one pool of its own datacenter; a new cluster gets the default.
ALTER TABLE clusters ADD COLUMN mac_pool_id bigint;
UPDATE clusters c SET mac_pool_id = p.id FROM mac_pools p WHERE p.datacenter_id = c.datacenter_id AND p.is_default;
ALTER TABLE clusters ALTER COLUMN mac_pool_id SET NOT NULL;
ALTER TABLE clusters ADD CONSTRAINT clusters_mac_pool_in_datacenter
    FOREIGN KEY (mac_pool_id, datacenter_id) REFERENCES mac_pools (id, datacenter_id);
-- the clusters of a pool (delete refuses while any uses it)
CREATE INDEX clusters_by_mac_pool ON clusters (mac_pool_id);

CREATE FUNCTION clusters_default_mac_pool() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mac_pool_id IS NULL THEN
        SELECT id INTO NEW.mac_pool_id FROM mac_pools WHERE datacenter_id = NEW.datacenter_id AND is_default;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER clusters_default_mac_pool BEFORE INSERT ON clusters
    FOR EACH ROW EXECUTE FUNCTION clusters_default_mac_pool();
