"""The audit: what differs between what the manager wants and what hosts report, as findings.

Pure: it takes typed inputs (desired networks, VM records, pool allocations,
each host's current state) and returns findings; the service gathers the
inputs and applies fixes.
"""
from .engine import audit, filter_findings
from .findings import CATEGORIES, Finding, Severity

__all__ = ["audit", "filter_findings", "CATEGORIES", "Finding", "Severity"]
