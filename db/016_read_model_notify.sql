-- The manager's read model (manager/service/readmodel.py) keeps hosts, networks and MAC pools in
-- memory; these triggers tell every listening manager that one of the tables it is built from
-- changed, so another manager's commit reaches it within the NOTIFY lag.
--
-- One notification per statement, its payload the table's name. PostgreSQL delivers it at commit
-- (nothing for a rolled-back change), folds identical payloads of one transaction into one (a bulk
-- VM creation leasing thousands of MACs is one 'mac_leases'), and delivers the notifications of
-- different transactions in commit order, which the read model's barrier relies on.

CREATE FUNCTION virtfleet_read_model_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('virtfleet_read_model', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['datacenters', 'clusters', 'hosts', 'networks', 'cluster_networks', 'network_labels',
                             'mac_pools', 'mac_pool_ranges', 'mac_leases'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION virtfleet_read_model_notify()',
                       t || '_read_model_notify', t);
    END LOOP;
END
$$;
