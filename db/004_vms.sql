-- VMs and their vNICs, templates and snapshots (seed 004: a vNIC gets its MAC when added, its PCI
-- address at the VM's first boot; both decide the guest's NIC name).
--
-- A vNIC is attached one of three ways (`kind`): to a logical network (a tap on the bridge named
-- after it), to a libvirt virtual network on the host, or directly (macvtap) to a host NIC with a
-- mode and an optional 802.1Qbg/802.1Qbh virtualport. Templates and snapshots name the logical
-- network (portable between datacenters); a VM's vNIC references it. A direct vNIC may name a
-- logical network too: its VLAN is what an 802.1Qbg virtualport needs.

CREATE FUNCTION vnic_attachment_ok(kind text, has_network boolean, virtual_network text, direct_nic text,
                                   direct_mode text, virtualport jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'network' THEN has_network AND virtual_network IS NULL AND direct_nic IS NULL
                            AND direct_mode IS NULL AND virtualport IS NULL
        WHEN 'virtual' THEN NOT has_network AND virtual_network IS NOT NULL AND direct_nic IS NULL
                            AND direct_mode IS NULL AND virtualport IS NULL
        WHEN 'direct'  THEN virtual_network IS NULL AND direct_nic IS NOT NULL
                            AND direct_mode IN ('vepa', 'bridge', 'private', 'passthrough')
        ELSE false
    END
$$;

CREATE DOMAIN vnic_name AS text CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$');
CREATE DOMAIN pci_address AS text CHECK (VALUE ~ '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$');
CREATE DOMAIN vm_object_name AS text CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$');

CREATE TABLE templates (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           vm_object_name NOT NULL UNIQUE,
    datacenter_id  bigint NOT NULL REFERENCES datacenters ON DELETE RESTRICT,
    memory_mib     integer NOT NULL CHECK (memory_mib > 0),
    vcpus          integer NOT NULL CHECK (vcpus > 0),
    source_vm      text,                       -- the VM it was made from, if any (for people)
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE template_nics (
    template_id      bigint NOT NULL REFERENCES templates ON DELETE CASCADE,
    name             vnic_name NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),
    kind             text NOT NULL,
    network          text,
    virtual_network  text,
    direct_nic       text,
    direct_mode      text,
    virtualport      jsonb,
    model            text NOT NULL DEFAULT 'virtio',
    pci_address      pci_address,
    PRIMARY KEY (template_id, name),
    UNIQUE (template_id, pci_address),
    CHECK (vnic_attachment_ok(kind, network IS NOT NULL, virtual_network, direct_nic, direct_mode, virtualport))
);

CREATE TABLE vms (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                vm_object_name NOT NULL UNIQUE,
    cluster_id          bigint NOT NULL REFERENCES clusters ON DELETE RESTRICT,
    host_id             bigint REFERENCES hosts ON DELETE RESTRICT,   -- where it runs, while it runs
    state               text NOT NULL DEFAULT 'down' CHECK (state IN ('down', 'up')),
    memory_mib          integer NOT NULL CHECK (memory_mib > 0),
    vcpus               integer NOT NULL CHECK (vcpus > 0),
    source_kind         text CHECK (source_kind IN ('template', 'snapshot')),
    source_name         text,                  -- kept for people after the source is gone
    source_template_id  bigint REFERENCES templates ON DELETE SET NULL,
    source_snapshot_id  bigint,                -- REFERENCES snapshots, below
    nic_rule            text,                  -- which seed-004 branch ordered its vNICs
    first_boot_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'up') = (host_id IS NOT NULL)),
    CHECK ((source_kind IS NULL) = (source_name IS NULL))
);

CREATE TABLE vnics (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vm_id            bigint NOT NULL REFERENCES vms ON DELETE CASCADE,
    name             vnic_name NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),   -- order in the domain XML
    kind             text NOT NULL,
    network_id       bigint REFERENCES networks ON DELETE RESTRICT,
    virtual_network  text,
    direct_nic       text,
    direct_mode      text,
    virtualport      jsonb,
    model            text NOT NULL DEFAULT 'virtio',
    mac              macaddr NOT NULL,
    pci_address      pci_address,              -- known from the first boot on
    host_device      text,                     -- vnetN / macvtapN while running
    UNIQUE (vm_id, name),
    UNIQUE (vm_id, pci_address),
    CHECK (vnic_attachment_ok(kind, network_id IS NOT NULL, virtual_network, direct_nic, direct_mode, virtualport))
);
CREATE INDEX vnics_network ON vnics (network_id);

CREATE TABLE snapshots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vm_id       bigint NOT NULL REFERENCES vms ON DELETE CASCADE,
    name        vm_object_name NOT NULL UNIQUE,
    memory_mib  integer NOT NULL,
    vcpus       integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_vm ON snapshots (vm_id);

ALTER TABLE vms ADD CONSTRAINT vms_source_snapshot_fk
    FOREIGN KEY (source_snapshot_id) REFERENCES snapshots ON DELETE SET NULL;

CREATE TABLE snapshot_nics (
    snapshot_id      bigint NOT NULL REFERENCES snapshots ON DELETE CASCADE,
    name             vnic_name NOT NULL,
    position         integer NOT NULL,
    kind             text NOT NULL,
    network          text,
    virtual_network  text,
    direct_nic       text,
    direct_mode      text,
    virtualport      jsonb,
    model            text NOT NULL DEFAULT 'virtio',
    mac              macaddr NOT NULL,
    pci_address      pci_address,
    PRIMARY KEY (snapshot_id, name),
    CHECK (vnic_attachment_ok(kind, network IS NOT NULL, virtual_network, direct_nic, direct_mode, virtualport))
);
