-- Certificate renewal and CA rollover.
--
-- cert_pem / cert_pin: the certificate the manager holds for each host and the name
-- only it carries (manager.pki.pin_name). The pinning migration (010) adds the same
-- columns; IF NOT EXISTS lets both land in either order.
-- trust_generation: the CA state generation (manager PKI dir, ca-state.json) whose
-- trust bundle the host was last given; a host behind the current generation is sent
-- the bundle (TrustBundle) before the manager's client certificate moves to a new CA.

ALTER TABLE hosts ADD COLUMN IF NOT EXISTS cert_pem text NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS cert_fingerprint text NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS cert_pin text NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS trust_generation integer NOT NULL DEFAULT 0
    CHECK (trust_generation >= 0);
