"""Network labels: what a label may be, and what a label change means for one host (pure).

A label on a network and the same label on a host's NIC put the network on that
NIC (oVirt's "network labels"). A change is judged by comparing what the labels
ask for before and after it, so removing a label detaches exactly the networks
it had put there, and a network an admin attached elsewhere by hand is left
alone (reported as skipped, not moved).
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from virtfleet import rules
from virtfleet.errors import InvalidArgument

LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")   # db/014_cluster_networks.sql checks the same

Labels = Mapping[str, frozenset[str]]   # NIC or network → its labels


def check_label(label: str, field: str = "label") -> str:
    if not LABEL.match(label):
        raise InvalidArgument(field, f"label {label[:60]!r} must be 1-50 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    return label


def check_nic_labels(pairs: Iterable[tuple[str, str]], field: str = "nic_labels") -> list[tuple[str, str]]:
    """(NIC, label) pairs given with a host before it reports: each NIC a kernel device name (whether
    the host has it is known only once it reports), each label once (a label marks one NIC of a host)."""
    checked: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for i, (nic, label) in enumerate(pairs):
        nic = rules.device_name(nic, f"{field}[{i}].nic", "NIC or bond")
        check_label(label, f"{field}[{i}].label")
        if label in seen:
            raise InvalidArgument(f"{field}[{i}].label", f"label {label!r} is given for {seen[label]} already; "
                                                         "a label marks one NIC of a host")
        seen[label] = nic
        checked.append((nic, label))
    return checked


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


def missing(nic_labels: Labels, network_labels: Labels, *, attached: Mapping[str, str],
            reported: Collection[str]) -> LabelPlan:
    """What a host's labels ask for that it is not recorded to carry, on NICs it reports (a host back, or
    first up). Nothing is detached: a network recorded on the host may have been put there by hand."""
    todo = plan(before=({}, {}), after=(nic_labels, network_labels), attached=attached)
    absent = [(net, nic) for net, nic in todo.attach if nic not in reported]
    return LabelPlan([a for a in todo.attach if a not in absent], [],
                     todo.skipped + [f"{net}: the host reports no NIC {nic}" for net, nic in absent])
