-- Networks of a cluster (required or optional), non-operational hosts, and network labels.
--
-- Before this migration any network of a datacenter could be used on any host and VM of any of its
-- clusters; so every existing network is attached to every cluster of its datacenter, optional,
-- except ovirtmgmt, which is required (oVirt's default). A network created from now on is attached
-- the same way to every cluster of its datacenter (manager/store/networks.py insert_network).
--
-- A cluster's required network that a host of the cluster carries (host_network_attachments) must
-- be present and in sync in the host's reports, or the host is 'non-operational' with the reason in
-- status_reason (manager/service/operational.py). status_reason is kept while the host is unreachable,
-- so it comes back non-operational, not up, while the network is still missing.

CREATE TABLE cluster_networks (
    cluster_id  bigint NOT NULL REFERENCES clusters ON DELETE CASCADE,
    network_id  bigint NOT NULL REFERENCES networks ON DELETE CASCADE,
    required    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (cluster_id, network_id)
);

CREATE INDEX cluster_networks_network ON cluster_networks (network_id);

INSERT INTO cluster_networks (cluster_id, network_id, required)
SELECT c.id, n.id, n.name = 'ovirtmgmt'
  FROM networks n JOIN clusters c ON c.datacenter_id = n.datacenter_id;

ALTER TABLE hosts DROP CONSTRAINT hosts_status_check;
ALTER TABLE hosts ADD CONSTRAINT hosts_status_check
    CHECK (status IN ('pending', 'enrolled', 'up', 'non-operational', 'unreachable', 'revoked'));
-- Why the host is not operational ('' when it is): the required networks it lacks or carries out of sync.
ALTER TABLE hosts ADD COLUMN status_reason text NOT NULL DEFAULT '' CHECK (length(status_reason) <= 2000);
ALTER TABLE hosts ADD CONSTRAINT hosts_non_operational_has_reason
    CHECK (status <> 'non-operational' OR status_reason <> '');

-- A label groups networks; every network carrying it lands on the host NIC carrying it.
CREATE TABLE network_labels (
    network_id  bigint NOT NULL REFERENCES networks ON DELETE CASCADE,
    label       text NOT NULL CHECK (label ~ '^[A-Za-z0-9_.-]{1,50}$'),
    PRIMARY KEY (network_id, label)
);

CREATE INDEX network_labels_label ON network_labels (label);

-- One NIC (or bond) per label on a host: the key is (host, label).
CREATE TABLE host_nic_labels (
    host_id  bigint NOT NULL REFERENCES hosts ON DELETE CASCADE,
    nic      text NOT NULL CHECK (octet_length(nic) BETWEEN 1 AND 15 AND nic !~ '[/:[:space:]]'),
    label    text NOT NULL CHECK (label ~ '^[A-Za-z0-9_.-]{1,50}$'),
    PRIMARY KEY (host_id, label)
);
