"""Where a VM may run: every host judged by every filter, the hosts that pass ranked by weights.

One scheduler for `vm start` without `--host`, `vm migrate` without `--to` and host
maintenance, so the three never disagree on what "fits" means. Pure: the VM's needs
and each host's facts come in typed (service/placement.py gathers them from the
database and the monitor's last reports), an `Explanation` comes out.

Filters never stop at the first refusal: a host is judged by all of them and its
verdict lists every reason, so an admin fixes a host once, not once per reason
(`vm start --explain` prints them). What a filter cannot know is never guessed:
memory a host has not told yet, the libvirt networks and network filters of a host
whose agent has not said (or whose libvirt has no nwfilter driver), a host that
never sent a network report — each passes with a note saying what was not checked.

The rules of direct attachments (macvtap) mirror the agent's own
(agent/virt/validation.py, check_host_conflicts): a passed-through host NIC serves
one guest at a time, so a VM needing a NIC in passthrough wants it free of every
other VM's direct vNIC, and any direct vNIC wants a NIC no other VM holds in
passthrough. The agent judges again when it defines the VM; this only keeps a
placement from choosing a host that would refuse.

Weights rank the accepted hosts: the most free memory first (a VM is not squeezed
onto a full host while another is idle), then the fewest VMs, then the name, so the
same facts always give the same choice.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from virtfleet.errors import InvalidArgument
from virtfleet.hostnet.netcompare import compare_attachment
from virtfleet.v1 import hostnet_pb2, netstate_pb2

MEMORY_UNKNOWN = "memory unknown"   # the note of a host whose agent has not said how much memory it has
RUNS_HERE = "the VM runs here"
IN_MAINTENANCE = "host is in maintenance"
PREPARING_MAINTENANCE = "host is preparing for maintenance (its VMs are being migrated away)"
EXCLUDED = "excluded from this placement by the caller"
NOT_REPORTED = "networks not checked: the host has not sent a network report yet"


class Purpose(enum.Enum):
    START = "start"          # a VM that is down, started on the chosen host
    MIGRATE = "migrate"      # a running VM moved to the chosen host: never the one it runs on


def purpose_of(text: str, field: str = "purpose") -> Purpose:
    """The API's purpose text ("" is start)."""
    try:
        return Purpose(text or Purpose.START.value)
    except ValueError:
        raise InvalidArgument(field, f"purpose {text[:40]!r} is not one of start, migrate") from None


# -- what comes in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectNeed:
    """A direct (macvtap) vNIC of the VM: the host NIC it needs, and whether it takes that NIC whole."""

    vnic: str
    parent: str
    passthrough: bool


@dataclass(frozen=True)
class VmNeeds:
    name: str
    cluster: str
    memory_mib: int
    host: str | None = None                       # where it runs now (None: down)
    bridged: tuple[str, ...] = ()                 # logical networks whose bridge its vNICs plug into
    direct: tuple[DirectNeed, ...] = ()
    virtual_networks: tuple[str, ...] = ()        # libvirt virtual networks its vNICs use
    filters: tuple[str, ...] = ()                 # network filters its vNIC profiles put on bridge vNICs


@dataclass(frozen=True)
class DirectUse:
    """A direct vNIC of some VM recorded on a host (running there, or migrating there)."""

    vm: str
    parent: str
    mode: str          # vepa | bridge | private | passthrough

    @property
    def passthrough(self) -> bool:
        return self.mode == "passthrough"


@dataclass(frozen=True)
class HostFacts:
    name: str
    cluster: str
    status: str                                   # the monitored status: up, non-operational, unreachable, …
    status_reason: str = ""                       # why non-operational
    maintenance: str = ""                         # '' | preparing | maintenance (the admin's state)
    state: netstate_pb2.NetworkState | None = None   # its last network report; None: it never sent one
    attachments: Mapping[str, hostnet_pb2.NetworkAttachment] = field(default_factory=dict)  # recorded, by network
    direct_uses: tuple[DirectUse, ...] = ()       # of the other VMs on it
    memory_total_mib: int | None = None           # None: its agent has not said
    virtual_networks: frozenset[str] | None = None   # libvirt networks active there; None: its agent has not said
    network_filters: frozenset[str] | None = None    # nwfilters its libvirt defines; None: not said, or no driver
    vms_memory_mib: int = 0                       # what the VMs recorded on it were given
    vm_count: int = 0


@dataclass(frozen=True)
class Policy:
    memory_overcommit_percent: float = 100.0      # VMs' memory on a host up to this share of its memory


# -- what comes out --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    host: str
    reasons: tuple[str, ...]                      # every filter's refusal; empty: accepted
    notes: tuple[str, ...] = ()                   # what could not be checked on this host
    free_memory_mib: int | None = None            # before this VM; None: unknown
    vm_count: int = 0
    score: float = 0.0                            # accepted hosts: higher is better

    @property
    def accepted(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Explanation:
    vm: str
    cluster: str
    purpose: Purpose
    verdicts: tuple[Verdict, ...]                 # accepted first, best first; then the refused, by name
    notes: tuple[str, ...] = ()                   # what could not be checked on any host

    @property
    def chosen(self) -> str:
        """The best accepted host; '' when none is."""
        return self.verdicts[0].host if self.verdicts and self.verdicts[0].accepted else ""

    def verdict(self, host: str) -> Verdict | None:
        return next((v for v in self.verdicts if v.host == host), None)

    def refusal(self) -> str:
        """Why no host fits, naming every host with all its reasons."""
        if not self.verdicts:
            return f"cluster {self.cluster} has no host for VM {self.vm}"
        hosts = "; ".join(f"{v.host}: {', '.join(v.reasons)}" for v in self.verdicts if not v.accepted)
        return f"no host of cluster {self.cluster} can {_verb(self.purpose)} VM {self.vm}: {hosts}"


def _verb(purpose: Purpose) -> str:
    return "start" if purpose is Purpose.START else "take the migrating"


# -- the scheduler ---------------------------------------------------------------------------------


def place(vm: VmNeeds, hosts: Iterable[HostFacts], purpose: Purpose = Purpose.START, *,
          exclude: frozenset[str] = frozenset(), policy: Policy = Policy()) -> Explanation:
    """Every host judged; the accepted ranked by weights, then the refused by name."""
    verdicts = [judge(vm, h, purpose, excluded=h.name in exclude, policy=policy) for h in hosts]
    accepted = sorted((v for v in verdicts if v.accepted), key=lambda v: (-v.score, v.host))
    refused = sorted((v for v in verdicts if not v.accepted), key=lambda v: v.host)
    return Explanation(vm.name, vm.cluster, purpose, tuple(accepted + refused))


def judge(vm: VmNeeds, host: HostFacts, purpose: Purpose = Purpose.START, *, excluded: bool = False,
          policy: Policy = Policy()) -> Verdict:
    """One host's verdict: the reasons of every filter that refused it, and its weights."""
    reasons: list[str] = []
    notes: list[str] = []
    if purpose is Purpose.MIGRATE and vm.host == host.name:
        reasons.append(RUNS_HERE)
    if excluded:
        reasons.append(EXCLUDED)
    reasons += cluster_reasons(vm, host) + status_reasons(host)
    if host.state is None and (vm.bridged or vm.direct):
        notes.append(NOT_REPORTED)
    else:
        reasons += network_reasons(vm, host) + direct_reasons(vm, host)
    libvirt_refusals, libvirt_notes = libvirt_reasons(vm, host)
    reasons += libvirt_refusals
    notes += libvirt_notes
    free = free_memory_mib(host, policy)
    if free is None:
        notes.append(MEMORY_UNKNOWN)
    elif vm.memory_mib > free:
        reasons.append(memory_reason(vm, host, free, policy))
    return Verdict(host.name, tuple(reasons), tuple(notes), free, host.vm_count,
                   score(free, host.vm_count) if not reasons else 0.0)


def score(free_memory_mib: int | None, vm_count: int) -> float:
    """Free memory in MiB decides (unknown counts as none); fewer VMs break a tie (the fraction stays below 1)."""
    return float(free_memory_mib or 0) + 1.0 / (1 + vm_count)


# -- the filters, each returning all of its reasons -----------------------------------------------


def cluster_reasons(vm: VmNeeds, host: HostFacts) -> list[str]:
    if host.cluster != vm.cluster:
        return [f"host is in cluster {host.cluster}, not the VM's cluster {vm.cluster}"]
    return []


def status_reasons(host: HostFacts) -> list[str]:
    """Up and operational, and not taken out of service by its admin."""
    reasons = []
    if host.maintenance == "maintenance":
        reasons.append(IN_MAINTENANCE)
    elif host.maintenance == "preparing":
        reasons.append(PREPARING_MAINTENANCE)
    if host.status == "non-operational":
        reasons.append(f"host is non-operational: {host.status_reason}" if host.status_reason
                       else "host is non-operational")
    elif host.status != "up":
        reasons.append(f"host is {host.status or 'in an unknown state'}")
    return reasons


def network_reasons(vm: VmNeeds, host: HostFacts) -> list[str]:
    """Each bridged network's bridge present in the host's last report, and in sync where the host is recorded
    to carry the network (netcompare: the comparison `host networks` and the audit use)."""
    state = host.state
    if state is None:
        return []
    links = {link.name: link for link in state.links}
    reasons = []
    for net in sorted(set(vm.bridged)):
        att = host.attachments.get(net)
        if att is None:
            bridge = links.get(net)
            if bridge is None or bridge.kind != "bridge":
                reasons.append(f"network {net} is not on the host (no bridge {net})")
            continue
        diffs = compare_attachment(att, state, links)
        if diffs:
            missing = diffs[0].found == "missing"
            detail = ", ".join(f"{d.field}: expected {d.expected}, found {d.found}" for d in diffs[:3])
            reasons.append(f"network {net} {'is missing' if missing else 'is out of sync'} ({detail})")
    return reasons


def direct_reasons(vm: VmNeeds, host: HostFacts) -> list[str]:
    """Each direct vNIC's host NIC exists, is free to take a macvtap, and is not taken by a passthrough."""
    state = host.state
    if state is None:
        return []
    links = {link.name: link for link in state.links}
    uses: dict[str, list[DirectUse]] = {}
    for use in host.direct_uses:
        if use.vm != vm.name:
            uses.setdefault(use.parent, []).append(use)
    reasons = []
    for need in vm.direct:
        label = f"vNIC {need.vnic}"
        nic = links.get(need.parent)
        if nic is None:
            reasons.append(f"{label}: host NIC {need.parent} does not exist on the host")
            continue
        if nic.master:
            reasons.append(f"{label}: host NIC {need.parent} is a port of {nic.master} (a macvtap needs a NIC that no "
                           "bridge or bond holds)")
        for use in sorted(uses.get(need.parent, []), key=lambda u: u.vm):
            if use.passthrough:
                reasons.append(f"{label}: host NIC {need.parent} is passed through to VM {use.vm}; it serves one "
                               "guest at a time")
            elif need.passthrough:
                reasons.append(f"{label}: cannot pass host NIC {need.parent} through: VM {use.vm} uses it "
                               f"({use.mode})")
    return reasons


def libvirt_reasons(vm: VmNeeds, host: HostFacts) -> tuple[list[str], list[str]]:
    """The libvirt networks the VM's vNICs use, active on the host, and its profiles' network filters defined
    there; (reasons, notes) — a note where the host's agent has not said (or its libvirt has no nwfilter driver)."""
    reasons: list[str] = []
    notes: list[str] = []
    if vm.virtual_networks:
        if host.virtual_networks is None:
            notes.append(f"virtual networks not checked ({', '.join(vm.virtual_networks)}): the host's agent has "
                         "not said which it has")
        else:
            reasons += [f"virtual network {n} is not active in the host's libvirt" for n in vm.virtual_networks
                        if n not in host.virtual_networks]
    if vm.filters:
        if host.network_filters is None:
            notes.append(f"network filters not checked ({', '.join(vm.filters)}): the host's agent has not said "
                         "which it has, or its libvirt has no nwfilter driver")
        else:
            reasons += [f"network filter {f} is not defined in the host's libvirt" for f in vm.filters
                        if f not in host.network_filters]
    return reasons, notes


def free_memory_mib(host: HostFacts, policy: Policy) -> int | None:
    """What the host may still give a VM: its memory times the overcommit share, less its VMs'; None unknown."""
    if host.memory_total_mib is None:
        return None
    return int(host.memory_total_mib * policy.memory_overcommit_percent / 100) - host.vms_memory_mib


def memory_reason(vm: VmNeeds, host: HostFacts, free: int, policy: Policy) -> str:
    capacity = int((host.memory_total_mib or 0) * policy.memory_overcommit_percent / 100)
    return (f"not enough memory: the VM needs {vm.memory_mib} MiB, {max(free, 0)} MiB free of {capacity} MiB "
            f"({policy.memory_overcommit_percent:g}% of {host.memory_total_mib} MiB)")

