"""A finding: one thing that differs from what it should be, worded for the admin who fixes it."""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass


class Severity(str, enum.Enum):
    ERROR = "error"        # something does not work (a network or vNIC missing, a host silent, a MAC clash)
    WARNING = "warning"    # works, but not as configured (MTU, extra bridge or address, foreign MAC, NIC order)


NETWORK = "network"              # a network the host should carry is missing or differs
UNEXPECTED = "unexpected"        # a bridge or address nobody asked for
VNIC = "vnic"                    # a running VM's vNIC device missing or different
MAC_DUPLICATE = "mac-duplicate"  # one MAC on more than one vNIC or device in the datacenter
MAC_FOREIGN = "mac-foreign"      # a MAC on a VM-facing device that no pool allocated
NIC_ORDER = "nic-order"          # a VM's NIC order differs from its template/snapshot source
GUEST_NIC = "guest-nic"          # a VM's guest names its NICs otherwise than its source VM's guest did
UNREACHABLE = "unreachable"      # the host's agent has not reported within the limit
VNIC_PROFILE = "vnic-profile"    # a running vNIC has an older generation of its profile than the profile has
VM_STATE = "vm-state"            # a VM runs where no rule settles it: on two hosts, a domain the record lacks

CATEGORIES = (NETWORK, UNEXPECTED, VNIC, MAC_DUPLICATE, MAC_FOREIGN, NIC_ORDER, GUEST_NIC, UNREACHABLE,
              VNIC_PROFILE, VM_STATE)
FIXABLE = frozenset({NETWORK})


@dataclass(frozen=True)
class Finding:
    category: str
    severity: Severity
    host: str          # "" for datacenter-wide findings
    object: str        # what it is about: "network vmnet: vmnet mtu", "vm web1 vNIC nic1", "MAC 52:54:00:…"
    expected: str
    found: str
    fix: str           # what to do about it, in words (and a command when there is one)

    @property
    def id(self) -> str:
        """Stable across audits while the same thing is wrong, so `audit fix ID` works on a later run."""
        return hashlib.sha1(f"{self.category}|{self.host}|{self.object}".encode()).hexdigest()[:10]

    @property
    def fixable(self) -> bool:
        return self.category in FIXABLE and bool(self.host)
