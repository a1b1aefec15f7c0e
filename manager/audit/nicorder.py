"""A VM's NIC order against its template or snapshot (seed 004), through domain/vmorder's own check."""
from __future__ import annotations

from ..domain.vmorder import Mismatch, SourceKind, check_order
from .findings import NIC_ORDER, Finding, Severity
from .inputs import NicOrderInput


def nic_order_findings(item: NicOrderInput) -> list[Finding]:
    return [
        Finding(NIC_ORDER, Severity.WARNING, "", f"vm {item.vm}: {_what(m)}", m.expected, m.found,
                f"the guest may name its NICs differently from {item.source_kind} {item.source_name}; "
                "recreate the VM from its source or fix the vNIC order")
        for m in check_order(SourceKind(item.source_kind), item.source, item.nics)
    ]


def _what(m: Mismatch) -> str:
    return f"{m.field} at eth{m.position}" if m.position >= 0 else m.field
