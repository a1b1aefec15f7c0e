"""The manager's pure decisions and typed values: what admins type, checked; no store, no I/O."""
