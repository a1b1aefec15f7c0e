-- Admins of the remote fleet API, each known by the SHA-256 fingerprint of the client certificate
-- the manager's CA issued to them. A revoked row stays (who had access, and until when); its name may
-- be given to a new admin, so a name is unique among admins not revoked.
CREATE TABLE admins (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL CHECK (name <> ''),
    role             text NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
    cert_fingerprint text NOT NULL UNIQUE,
    cert_serial      text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    revoked_at       timestamptz,
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

CREATE UNIQUE INDEX admins_name_valid ON admins (name) WHERE revoked_at IS NULL;
