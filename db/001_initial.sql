-- Datacenters, clusters, hosts and the latest network report of each host.

CREATE TABLE datacenters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clusters (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    datacenter_id  bigint NOT NULL REFERENCES datacenters ON DELETE RESTRICT,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (datacenter_id, name)
);

CREATE TABLE hosts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id        bigint NOT NULL REFERENCES clusters ON DELETE RESTRICT,
    name              text NOT NULL UNIQUE
                      CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'),
    address           inet NOT NULL UNIQUE,
    endpoint          text NOT NULL,
    cert_fingerprint  text NOT NULL,
    status            text NOT NULL DEFAULT 'enrolled'
                      CHECK (status IN ('enrolled', 'up', 'unreachable')),
    enrolled_at       timestamptz NOT NULL DEFAULT now(),
    last_report_at    timestamptz
);

CREATE TABLE host_network_reports (
    host_id      bigint PRIMARY KEY REFERENCES hosts ON DELETE CASCADE,
    sequence     bigint NOT NULL DEFAULT 0,
    reported_at  timestamptz NOT NULL,
    -- NetworkState in protobuf's JSON mapping: queryable for audits, one row per host.
    state        jsonb NOT NULL
);

INSERT INTO datacenters (name) VALUES ('Default');
INSERT INTO clusters (datacenter_id, name) SELECT id, 'Default' FROM datacenters WHERE name = 'Default';
