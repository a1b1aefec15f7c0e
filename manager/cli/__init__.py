"""The `virtfleet` admin command."""
