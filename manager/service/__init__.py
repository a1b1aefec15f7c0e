"""Use cases: what the API asks for, in terms of the store, the CA and the agents."""
