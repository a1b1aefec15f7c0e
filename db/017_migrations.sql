-- Live migration, host maintenance and placement (issue 16).
--
-- vm_migrations: one row per migration the manager started; at most one running per VM (the partial
-- unique index), so a second migration of the same VM is refused by the database too. A manager that
-- restarts finds the running rows and settles each by asking the source's libvirt (its job) and both
-- hosts (where the domain runs): the record moves only when the VM runs on the destination.
CREATE TABLE vm_migrations (
    id              bigserial PRIMARY KEY,
    vm_id           bigint NOT NULL REFERENCES vms ON DELETE CASCADE,
    source_host_id  bigint REFERENCES hosts ON DELETE SET NULL,
    dest_host_id    bigint REFERENCES hosts ON DELETE SET NULL,
    state           text NOT NULL DEFAULT 'running'
                    CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    downtime_ms     bigint,
    message         text NOT NULL DEFAULT '' CHECK (length(message) <= 2000),
    options         jsonb NOT NULL DEFAULT '{}',
    CHECK ((state = 'running') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX vm_migrations_one_running ON vm_migrations (vm_id) WHERE state = 'running';

-- Maintenance is the admin's state of a host, beside its monitored status (up, unreachable, …, which
-- keeps being judged as before): '' in service, 'preparing' while its VMs are migrated away,
-- 'maintenance' when empty. A host not in service gets no VM from placement; `host activate` clears it.
-- The API shows status "maintenance" / "preparing-maintenance" for such a host.
ALTER TABLE hosts ADD COLUMN maintenance text NOT NULL DEFAULT ''
    CHECK (maintenance IN ('', 'preparing', 'maintenance'));

-- Memory the host has, from its agent (GetHostResources), for placement; NULL until first learned.
ALTER TABLE hosts ADD COLUMN memory_total_mib bigint CHECK (memory_total_mib > 0);

-- The cluster's migration network (oVirt's migration role): at most one per cluster; without one,
-- migration traffic uses the management network.
ALTER TABLE cluster_networks ADD COLUMN migration boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX cluster_networks_one_migration ON cluster_networks (cluster_id) WHERE migration;
