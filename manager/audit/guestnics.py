"""A VM's guest against its template's or snapshot's guest: does it call each vNIC what the source's guest did?

Seed 004 asked from inside: the names come from the guest agents (last seen), the
source's as its template or snapshot kept them from the VM it was made from. The
comparison is domain/guestnames.py's, the one `vm check-order --guest` uses. Names
not known on either side are not compared, so a VM whose guest never reported (no
OS, no guest agent, never started) yields nothing.
"""
from __future__ import annotations

from ..domain.guestnames import guest_name_mismatches
from .findings import GUEST_NIC, Finding, Severity
from .inputs import GuestNicInput


def guest_nic_findings(item: GuestNicInput) -> list[Finding]:
    return [
        Finding(GUEST_NIC, Severity.WARNING, "", f"vm {item.vm}: guest name of vNIC {item.nics[m.position].vnic}",
                m.expected, m.found,
                f"its guest names this NIC otherwise than {item.source_kind} {item.source_name}'s guest did; "
                f"see `virtfleet vm check-order {item.vm} --guest`, and recreate the VM from its source or fix the "
                "vNIC order")
        for m in guest_name_mismatches(item.source, item.nics)
    ]
