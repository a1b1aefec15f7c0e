"""Changing the kernel: typed operations, the batch writer, the journaled all-or-nothing transaction."""
