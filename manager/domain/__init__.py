"""The manager's pure models and decisions: typed values and the rules they follow; no database, no gRPC calls."""
