-- The audit trail: one row per fleet-API call that changed or tried to change something, per refused
-- call (PERMISSION_DENIED, UNAUTHENTICATED), and per action the manager took or saw by itself (host
-- unreachable/back, agent rollback after a missed confirmation, MAC pool low/empty, audit findings
-- new/resolved, certificates renewed/revoked). Written in batches by manager/service/events.py, read
-- by EventService (`virtfleet events`).
--
-- Append-only, and the database holds it rather than the API's good manners:
-- - UPDATE and TRUNCATE are refused by triggers, always;
-- - DELETE is refused unless the deleting transaction set `virtfleet.events_purge_before` to a time,
--   and then only for rows older than that time. The one code path that sets it is purge_events()
--   (set_config(..., is_local => true): the setting ends with its transaction), which takes the
--   retention in days (at least 1) and computes the time itself from now(). A `DELETE FROM events`
--   written anywhere else in the manager fails, and the trigger itself refuses a time later than a
--   day ago: no row younger than a day can be deleted, whoever sets the variable.
-- This guards against the manager's own code paths and mistakes. A database role that may set
-- session variables or drop triggers can still erase rows: keeping a copy elsewhere is the answer
-- to that, not this table.

CREATE TABLE events (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    identity_name text NOT NULL,
    identity_kind text NOT NULL CHECK (identity_kind IN ('unix', 'cert', 'host', 'system', 'anonymous')),
    role          text CHECK (role IN ('auditor', 'operator', 'admin')),   -- NULL: the caller holds none
    peer          text NOT NULL DEFAULT '',
    rpc           text NOT NULL,          -- "/virtfleet.v1.FleetService/CreateNetwork" or "host.unreachable"
    object_kind   text NOT NULL DEFAULT '',
    object_name   text NOT NULL DEFAULT '',
    summary       jsonb NOT NULL DEFAULT '{}',   -- what was asked; never key, certificate or token bytes
    code          text NOT NULL,          -- gRPC status name: "OK", "PERMISSION_DENIED", …
    message       text NOT NULL DEFAULT '',
    duration_ms   double precision NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    request_id    text NOT NULL DEFAULT ''
);

-- `events --since`, the purge; `--object vm/web1`; `--identity alice`: each newest first.
CREATE INDEX events_at ON events (at);
CREATE INDEX events_object ON events (object_kind, object_name, at);
CREATE INDEX events_identity ON events (identity_name, at);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    purge_before text := current_setting('virtfleet.events_purge_before', true);
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(purge_before, '') <> ''
       AND purge_before::timestamptz <= now() - interval '1 day' AND OLD.at < purge_before::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events are append-only: % refused (only purge_events() deletes, rows past retention)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

CREATE FUNCTION purge_events(keep_days integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cutoff  timestamptz;
    removed bigint;
BEGIN
    IF keep_days IS NULL OR keep_days < 1 THEN
        RAISE EXCEPTION 'purge_events: keep_days must be at least 1, got %', keep_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - make_interval(days => keep_days);
    PERFORM set_config('virtfleet.events_purge_before', cutoff::text, true);
    DELETE FROM events WHERE at < cutoff;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('virtfleet.events_purge_before', '', true);
    RETURN removed;
END
$$;
