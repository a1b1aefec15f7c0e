"""setupNetworks: logical networks and bonds laid onto this host's kernel.

validation (pure) → model (pure: config → devices) → plan (pure: steps) →
apply (journaled transaction, verify) → changes (pending change, commit,
timeout, persistence and restore at start).
"""
