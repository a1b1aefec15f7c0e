"""The manager's pure models and decisions: typed values and rules, no database, no gRPC calls."""
