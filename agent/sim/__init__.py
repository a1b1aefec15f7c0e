"""The fleet simulator: many fake hosts behind the real AgentService contract, in one process.

Like oVirt's vdsmfake, it lets the manager be tested and measured at fleet
scale without a kernel per host: states are generated (and changed on
request) instead of read, but reported with the same messages, sequences,
epochs, deltas and heartbeats as a real agent, over the same mutual TLS.
"""
