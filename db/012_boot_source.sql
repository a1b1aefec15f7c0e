-- How a VM boots (issue 15): a kernel (+ initrd, cmdline) booted directly, a disk image on the host
-- (virtio-blk), the agent's cached test guest, or nothing (a diskless VM). Kept per VM, template and
-- snapshot: a VM made from a template or snapshot takes its source's unless told otherwise, and a snapshot
-- records its VM's. The paths are the host's: the manager cannot see them, the agent checks that they
-- exist at define/start; here only their form is kept honest (absolute, bounded).
--
-- The domain type (kvm, qemu = TCG, auto) is the admin's wish; `auto` lets each agent pick TCG where its
-- KVM is paravirtual or absent.
--
-- A vNIC's `guest_name` is what its guest last called it (from the guest agent, matched by MAC), with the
-- addresses it held then; a template or snapshot made from a VM keeps its source VM's guest names, so
-- `vm check-order --guest` and the audit (`guest-nic`) can compare a VM's guest with its source's.

CREATE DOMAIN host_path AS text CHECK (VALUE ~ '^/' AND length(VALUE) <= 4096 AND VALUE !~ '[[:cntrl:]]');
CREATE DOMAIN boot_cmdline AS text CHECK (length(VALUE) <= 2048 AND VALUE !~ '[[:cntrl:]]');

CREATE FUNCTION boot_source_ok(kernel text, initrd text, cmdline text, disk text, test_guest boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (kernel IS NOT NULL)::int + (disk IS NOT NULL)::int + test_guest::int <= 1
       AND (initrd IS NULL OR kernel IS NOT NULL)
       AND (cmdline IS NULL OR kernel IS NOT NULL OR test_guest)
$$;

ALTER TABLE vms
    ADD COLUMN boot_kernel      host_path,
    ADD COLUMN boot_initrd      host_path,
    ADD COLUMN boot_cmdline     boot_cmdline,
    ADD COLUMN boot_disk        host_path,
    ADD COLUMN boot_test_guest  boolean NOT NULL DEFAULT false,
    ADD COLUMN domain_type      text NOT NULL DEFAULT 'auto' CHECK (domain_type IN ('kvm', 'qemu', 'auto')),
    ADD CONSTRAINT vms_boot_source CHECK (boot_source_ok(boot_kernel, boot_initrd, boot_cmdline, boot_disk,
                                                         boot_test_guest));

ALTER TABLE templates
    ADD COLUMN boot_kernel      host_path,
    ADD COLUMN boot_initrd      host_path,
    ADD COLUMN boot_cmdline     boot_cmdline,
    ADD COLUMN boot_disk        host_path,
    ADD COLUMN boot_test_guest  boolean NOT NULL DEFAULT false,
    ADD COLUMN domain_type      text NOT NULL DEFAULT 'auto' CHECK (domain_type IN ('kvm', 'qemu', 'auto')),
    ADD CONSTRAINT templates_boot_source CHECK (boot_source_ok(boot_kernel, boot_initrd, boot_cmdline, boot_disk,
                                                               boot_test_guest));

ALTER TABLE snapshots
    ADD COLUMN boot_kernel      host_path,
    ADD COLUMN boot_initrd      host_path,
    ADD COLUMN boot_cmdline     boot_cmdline,
    ADD COLUMN boot_disk        host_path,
    ADD COLUMN boot_test_guest  boolean NOT NULL DEFAULT false,
    ADD COLUMN domain_type      text NOT NULL DEFAULT 'auto' CHECK (domain_type IN ('kvm', 'qemu', 'auto')),
    ADD CONSTRAINT snapshots_boot_source CHECK (boot_source_ok(boot_kernel, boot_initrd, boot_cmdline, boot_disk,
                                                               boot_test_guest));

CREATE DOMAIN guest_nic_name AS text CHECK (length(VALUE) BETWEEN 1 AND 64 AND VALUE !~ '[[:cntrl:]]');

ALTER TABLE vnics
    ADD COLUMN guest_name     guest_nic_name,              -- last seen; NULL: never seen
    ADD COLUMN guest_ips      text[] NOT NULL DEFAULT '{}'; -- ADDR/PREFIX, when it was last seen
ALTER TABLE template_nics ADD COLUMN guest_name guest_nic_name;   -- the source VM's guest's, if known
ALTER TABLE snapshot_nics ADD COLUMN guest_name guest_nic_name;
