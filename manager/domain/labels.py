"""Network labels: what a label may be, and what a label change means for one host (pure).

A label on a network and the same label on a host's NIC put the network on that
NIC (oVirt's "network labels"). A change is judged by comparing what the labels
ask for before and after it, so removing a label detaches exactly the networks
it had put there, and a network an admin attached elsewhere by hand is left
alone (reported as skipped, not moved).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from virtfleet.errors import InvalidArgument

LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")   # db/014_cluster_networks.sql checks the same

Labels = Mapping[str, frozenset[str]]   # NIC or network → its labels


def check_label(label: str, field: str = "label") -> str:
    if not LABEL.match(label):
        raise InvalidArgument(field, f"label {label[:60]!r} must be 1-50 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    return label


@dataclass(frozen=True)
class LabelPlan:
    attach: list[tuple[str, str]]   # (network, NIC)
    detach: list[str]
    skipped: list[str]              # why a labelled network is not put on its NIC

    @property
    def empty(self) -> bool:
        return not self.attach and not self.detach


def wanted(nic_labels: Labels, network_labels: Labels) -> dict[str, str]:
    """network → the NIC labels put it on (the first NIC by name when two labels disagree)."""
    placed: dict[str, str] = {}
    for nic in sorted(nic_labels):
        for net, labels in sorted(network_labels.items()):
            if labels & nic_labels[nic]:
                placed.setdefault(net, nic)
    return placed


def plan(*, before: tuple[Labels, Labels], after: tuple[Labels, Labels], attached: Mapping[str, str]) -> LabelPlan:
    """What one host's setupNetworks does for a label change.

    `before`/`after` are (NIC labels, network labels) around the change; `attached` is
    network → NIC as the host's desired networks are recorded now.
    """
    was, now = wanted(*before), wanted(*after)
    attach, skipped = [], []
    for net, nic in sorted(now.items()):
        on = attached.get(net)
        if on is None:
            attach.append((net, nic))
        elif on != nic:
            skipped.append(f"{net}: attached on {on} already")
    detach = sorted(net for net, nic in was.items() if net not in now and attached.get(net) == nic)
    return LabelPlan(attach, detach, skipped)
