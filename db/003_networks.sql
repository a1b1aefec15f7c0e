-- Logical networks of a datacenter and their desired attachments on hosts (setupNetworks).

CREATE TABLE networks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    datacenter_id  bigint NOT NULL REFERENCES datacenters ON DELETE RESTRICT,
    -- a VM network's bridge is named after it: at most 15 bytes, no '/', ':' or whitespace
    name           text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 15 AND name !~ '[/:[:space:]]'),
    vlan           integer CHECK (vlan BETWEEN 1 AND 4094),
    mtu            integer NOT NULL DEFAULT 1500 CHECK (mtu BETWEEN 68 AND 65535),
    vm_network     boolean NOT NULL DEFAULT true,
    description    text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (datacenter_id, name)
);

CREATE TABLE host_network_attachments (
    host_id        bigint NOT NULL REFERENCES hosts ON DELETE CASCADE,
    network_id     bigint NOT NULL REFERENCES networks ON DELETE RESTRICT,
    nic            text NOT NULL,
    ipv4_method    text NOT NULL DEFAULT 'none' CHECK (ipv4_method IN ('none', 'static', 'dhcp')),
    ipv4_address   inet,
    ipv4_prefixlen integer CHECK (ipv4_prefixlen BETWEEN 0 AND 32),
    ipv4_gateway   inet,
    default_route  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (host_id, network_id),
    CHECK ((ipv4_method = 'static') = (ipv4_address IS NOT NULL AND ipv4_prefixlen IS NOT NULL))
);

-- One default route per host.
CREATE UNIQUE INDEX host_network_attachments_one_default_route
    ON host_network_attachments (host_id) WHERE default_route;

CREATE TABLE host_bonds (
    host_id  bigint NOT NULL REFERENCES hosts ON DELETE CASCADE,
    name     text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 15 AND name !~ '[/:[:space:]]'),
    slaves   text[] NOT NULL CHECK (cardinality(slaves) >= 2),
    mode     text NOT NULL,
    options  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (host_id, name)
);

INSERT INTO networks (datacenter_id, name, vm_network, description)
SELECT id, 'ovirtmgmt', true, 'Management Network' FROM datacenters WHERE name = 'Default';
