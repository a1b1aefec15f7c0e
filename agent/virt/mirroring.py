"""Port mirroring, VDSM's way: every frame a host bridge carries is also sent to a mirroring vNIC's tap.

What rules, decided here as pure functions; mirror_tc.py reads and writes the kernel.

- The wish is the VM's own: a vNIC with `port_mirroring` is named in the domain's
  <metadata> (domxml.mirroring_metadata), so a start, a hot-plug, an UpdateNic and a
  sweep after any VM change all find it in libvirt, the one place VM state lives.
- The rules: a `clsact` qdisc on the bridge and, on both its hooks, one u32 match-all
  filter per mirroring tap with `action mirred egress mirror dev TAP`. Ingress sees the
  frames the bridge passes up; egress the frames the host sends through it. clsact
  adds no queue (a bridge keeps its noqueue root), where VDSM replaces the root with prio.
- The bridge is made promiscuous while it has mirrors: only then does it pass up (and
  so through its ingress hook) the frames it forwards from one port to another.
- Our filters carry priority MIRROR_PRIO, so they are told from anyone else's. A tap
  that vanished (VM stopped, vNIC unplugged, guest powered off) leaves a filter
  mirroring to no device; the next sweep finds it stale and the bridge is rebuilt from
  the wishes of the VMs still running. The last mirror gone, clsact (when nobody else
  has filters on it) and promiscuity go too.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .domxml import ALIAS_PREFIX, METADATA_NS

MIRROR_PRIO = 0x7646      # "vF": the tc priority (pref) of our filters, nobody else's
HOOKS = ("ingress", "egress")


@dataclass(frozen=True)
class MirrorWish:
    """One running vNIC that wants its bridge's traffic: `tap` is libvirt's vnetN for it."""

    vm: str
    nic: str
    bridge: str
    tap: str


@dataclass(frozen=True)
class BridgeMirrors:
    """What the kernel has on one bridge (read by mirror_tc.read_bridge)."""

    bridge: str
    clsact: bool = False                  # our kind of qdisc is there
    ours: tuple[frozenset[int], ...] = (frozenset(), frozenset())  # per hook: tap ifindexes mirrored to (0: gone)
    foreign_filters: int = 0              # filters of other priorities on the clsact hooks
    promisc: bool = False
    other_ingress: bool = False           # a plain ingress qdisc (not clsact) holds ffff:


@dataclass(frozen=True)
class BridgePlan:
    bridge: str
    add_clsact: bool = False
    clear_ours: bool = False              # delete our priority on both hooks
    mirror_to: tuple[int, ...] = ()       # then one filter per tap ifindex on each hook
    remove_clsact: bool = False
    promisc: bool | None = None           # set the flag to this; None: leave it

    @property
    def empty(self) -> bool:
        return self == BridgePlan(self.bridge)


def mirrored_nics(domain_xml: str) -> set[str]:
    """The vNIC names our <metadata> marks for mirroring."""
    root = ET.fromstring(domain_xml)
    return {el.get("name", "") for el in root.iterfind(f"metadata/{{{METADATA_NS}}}vnics/{{{METADATA_NS}}}nic")
            if el.get("port_mirroring") == "yes"}


def wishes_of(vm: str, live_xml: str) -> list[MirrorWish]:
    """The running domain's mirroring vNICs that have a tap on a bridge (the others cannot mirror)."""
    wanted = mirrored_nics(live_xml)
    found = []
    for iface in ET.fromstring(live_xml).iterfind("devices/interface[@type='bridge']"):
        alias, source, target = iface.find("alias"), iface.find("source"), iface.find("target")
        name = (alias.get("name", "") if alias is not None else "").removeprefix(ALIAS_PREFIX)
        if name in wanted and source is not None and target is not None and target.get("dev"):
            found.append(MirrorWish(vm, name, source.get("bridge", ""), target.get("dev", "")))
    return found


def plan_bridge(current: BridgeMirrors, taps: frozenset[int]) -> BridgePlan:
    """From what the bridge has to mirroring exactly `taps` (ifindexes; empty: no mirroring at all)."""
    have_ours = any(current.ours)
    if not taps:
        if not have_ours:
            return BridgePlan(current.bridge)  # never ours, or already cleaned: the flag is not ours to clear
        drop_qdisc = current.clsact and current.foreign_filters == 0
        return BridgePlan(current.bridge, clear_ours=have_ours and not drop_qdisc, remove_clsact=drop_qdisc,
                          promisc=False if current.promisc else None)
    in_sync = all(hook == taps for hook in current.ours) and current.clsact
    return BridgePlan(
        current.bridge, add_clsact=not current.clsact, clear_ours=have_ours and not in_sync,
        mirror_to=() if in_sync else tuple(sorted(taps)), promisc=None if current.promisc else True)


def wanted_by_bridge(wishes: list[MirrorWish], ifindex: dict[str, int]) -> dict[str, frozenset[int]]:
    """Bridge → tap ifindexes to mirror to; a tap that vanished since libvirt listed it is left out."""
    found: dict[str, set[int]] = {}
    for w in wishes:
        if w.tap in ifindex:
            found.setdefault(w.bridge, set()).add(ifindex[w.tap])
    return {bridge: frozenset(taps) for bridge, taps in found.items()}
