-- Certificate renewal and CA rollover.
--
-- The certificate the manager holds for each host and its pin are 010's (hosts.cert_pem,
-- cert_pin); renewal replaces them in one statement (manager/store/certificates.py).
-- trust_generation: the CA state generation (manager PKI dir, ca-state.json) whose
-- trust bundle the host was last given; a host behind the current generation is sent
-- the bundle (TrustBundle) before the manager's client certificate moves to a new CA.

ALTER TABLE hosts ADD COLUMN trust_generation integer NOT NULL DEFAULT 0
    CHECK (trust_generation >= 0);
