-- vNIC profiles (oVirt's): a logical network plus how its vNICs are treated — QoS (libvirt <bandwidth>,
-- average/peak in kbytes/s and burst in kbytes, as libvirt and oVirt count them), a network filter
-- (libvirt nwfilter, with parameters), port mirroring, port isolation, the network's MTU given to the guest.
--
-- Every network has a default profile of its own name, made with it by the trigger below: the database
-- keeps that true for every way a network is made. The default profile of a VM network carries libvirt's
-- `no-mac-spoofing` filter when MAC anti-spoofing is on (oVirt's engine does the same with VDSM's
-- vdsm-no-mac-spoofing); the manager writes its `mac_anti_spoofing` setting into vnic_profile_settings at
-- start, for the networks made afterwards — existing profiles are not changed behind the admin's back.
--
-- A vNIC that names a network names one of that network's profiles (a composite foreign key, so a
-- profile of another network cannot be given); `generation` grows with every edit of a profile, and
-- `applied_profile_generation` records which one the running VM was given: less is "out of sync".

CREATE TABLE vnic_profile_settings (
    only_row           boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    mac_anti_spoofing  boolean NOT NULL DEFAULT true
);
INSERT INTO vnic_profile_settings DEFAULT VALUES;

ALTER TABLE networks ADD CONSTRAINT networks_id_datacenter UNIQUE (id, datacenter_id);

-- libvirt: average, peak and burst fit an unsigned 32-bit field; oVirt and the API allow 1 … 2^31.
CREATE DOMAIN qos_value AS bigint CHECK (VALUE BETWEEN 1 AND 2147483648);

CREATE TABLE vnic_profiles (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    datacenter_id      bigint NOT NULL,
    network_id         bigint NOT NULL,
    -- a default profile has its network's name, so the network name rule is the loosest one it must take
    name               text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 63 AND name !~ '[/:[:space:]]'),
    is_default         boolean NOT NULL DEFAULT false,
    inbound_average    qos_value,
    inbound_peak       qos_value,
    inbound_burst      qos_value,
    outbound_average   qos_value,
    outbound_peak      qos_value,
    outbound_burst     qos_value,
    filter_name        text CHECK (filter_name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    filter_parameters  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(filter_parameters) = 'array'),
    port_mirroring     boolean NOT NULL DEFAULT false,
    isolated           boolean NOT NULL DEFAULT false,
    mtu_to_guest       boolean NOT NULL DEFAULT false,
    generation         bigint NOT NULL DEFAULT 1 CHECK (generation >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (datacenter_id, name),
    UNIQUE (id, network_id),
    FOREIGN KEY (network_id, datacenter_id) REFERENCES networks (id, datacenter_id) ON DELETE CASCADE,
    -- libvirt needs an average wherever a peak or burst is given
    CHECK (inbound_average IS NOT NULL OR (inbound_peak IS NULL AND inbound_burst IS NULL)),
    CHECK (outbound_average IS NOT NULL OR (outbound_peak IS NULL AND outbound_burst IS NULL)),
    CHECK (filter_name IS NOT NULL OR filter_parameters = '[]')
);
CREATE UNIQUE INDEX vnic_profiles_one_default ON vnic_profiles (network_id) WHERE is_default;

CREATE FUNCTION network_default_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vnic_profiles (datacenter_id, network_id, name, is_default, filter_name)
    VALUES (NEW.datacenter_id, NEW.id, NEW.name, true,
            CASE WHEN NEW.vm_network AND (SELECT mac_anti_spoofing FROM vnic_profile_settings)
                 THEN 'no-mac-spoofing' END);
    RETURN NULL;
END
$$;
CREATE TRIGGER networks_default_profile AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION network_default_profile();

INSERT INTO vnic_profiles (datacenter_id, network_id, name, is_default, filter_name)
SELECT datacenter_id, id, name, true, CASE WHEN vm_network THEN 'no-mac-spoofing' END FROM networks;

-- A VM's vNICs: every one that names a network names a profile of that network.
ALTER TABLE vnics ADD COLUMN profile_id bigint,
                  ADD COLUMN link_down boolean NOT NULL DEFAULT false,
                  ADD COLUMN applied_profile_generation bigint;

UPDATE vnics n SET profile_id = p.id FROM vnic_profiles p WHERE p.network_id = n.network_id AND p.is_default;

ALTER TABLE vnics ADD CONSTRAINT vnics_profile_of_network
                      FOREIGN KEY (profile_id, network_id) REFERENCES vnic_profiles (id, network_id),
                  ADD CONSTRAINT vnics_profile_with_network CHECK ((profile_id IS NULL) = (network_id IS NULL));
CREATE INDEX vnics_profile ON vnics (profile_id);

-- A vNIC recorded with a network but no profile (a path that names none) gets the network's default.
CREATE FUNCTION vnic_default_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.profile_id IS NULL AND NEW.network_id IS NOT NULL THEN
        SELECT id INTO NEW.profile_id FROM vnic_profiles WHERE network_id = NEW.network_id AND is_default;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER vnics_default_profile BEFORE INSERT OR UPDATE OF network_id ON vnics
    FOR EACH ROW EXECUTE FUNCTION vnic_default_profile();

-- Templates and snapshots name the profile, as they name the network (portable between datacenters).
ALTER TABLE template_nics ADD COLUMN profile text;
ALTER TABLE snapshot_nics ADD COLUMN profile text;
UPDATE template_nics SET profile = network WHERE network IS NOT NULL;
UPDATE snapshot_nics SET profile = network WHERE network IS NOT NULL;
