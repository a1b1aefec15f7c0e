"""setupNetworks: logical networks and bonds laid onto this host's kernel — the management network too.

canonicalize (pure: request merged onto the running config, or completed from
the host's state) → validation (pure) → model (pure: config → devices) →
plan (pure: steps) → apply (journaled transaction, verify) → changes (pending
change, commit, timeout, persistence and restore at start).
"""
