-- Host certificates the manager trusts, one-time enrollment tokens, and revoked certificates.
--
-- cert_pin is the unique DNS name (c<serial>.pin.virtfleet.invalid) the CA put in the host's
-- current certificate; the manager's channel to the agent asks TLS for exactly that name, so
-- no other certificate — not even one the same CA signed for the same host — is accepted.
-- A host without a pin (pending enrollment, or revoked) is not called at all. Rows from
-- before this migration have neither cert_pem nor cert_pin: see manager/agents/clients.py.

ALTER TABLE hosts ADD COLUMN cert_pem bytea;
ALTER TABLE hosts ADD COLUMN cert_pin text UNIQUE;
ALTER TABLE hosts DROP CONSTRAINT hosts_status_check;
ALTER TABLE hosts ADD CONSTRAINT hosts_status_check
    CHECK (status IN ('pending', 'enrolled', 'up', 'unreachable', 'revoked'));
-- pending and revoked hosts hold no certificate; every other host row enrolled through 010 holds one
ALTER TABLE hosts ADD CONSTRAINT hosts_pin_when_trusted
    CHECK (status NOT IN ('pending', 'revoked') OR (cert_pin IS NULL AND cert_pem IS NULL));

CREATE TABLE enroll_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id     bigint NOT NULL REFERENCES hosts ON DELETE CASCADE,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),   -- sha256 of the token; never the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Kept after the host is removed: a record of what was once trusted and why it is not any more.
CREATE TABLE revoked_certificates (
    serial       text PRIMARY KEY,          -- hex
    fingerprint  text NOT NULL,
    host         text NOT NULL,
    revoked_at   timestamptz NOT NULL DEFAULT now(),
    reason       text NOT NULL CHECK (reason IN ('revoked', 'host removed', 'replaced'))
);
