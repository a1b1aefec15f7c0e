"""The lab: one machine made to look like a small datacenter (namespaces as hosts)."""
