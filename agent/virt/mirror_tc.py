"""Port mirroring's thin edge: reads and writes tc and the promiscuous flag through netlink (pyroute2).

The agent runs in the host's network namespace, so the bridges and taps it sees are
the host's own. `sync` is the whole algorithm: the wishes of every running VM (from
libvirt) → what each bridge should carry (mirroring.plan_bridge) → the changes. It
is called after every VM change that can add or remove a mirroring tap, so a
vanished tap's filters do not outlive the next change.
"""
from __future__ import annotations

import logging
from contextlib import closing

import libvirt
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtfleet.errors import FailedPrecondition

from .domxml import METADATA_KEY, METADATA_NS, mirroring_metadata
from .hostdevs import host_devices
from .mirroring import (MIRROR_PRIO, BridgeMirrors, BridgePlan, MirrorWish, mirrored_nics, plan_bridge,
                        wanted_by_bridge, wishes_of)

log = logging.getLogger(__name__)

CLSACT = 0xFFFF0000
HOOK_PARENTS = (0xFFFFFFF2, 0xFFFFFFF3)   # clsact's ingress and egress
ETH_P_ALL = 0x0003
IFF_PROMISC = 0x100


def set_mirrored(dom: libvirt.virDomain, nic: str, wanted: bool, flags: int) -> None:
    """Marks (or unmarks) one vNIC for mirroring in the domain's <metadata>, live and/or in its definition."""
    for flag in (libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG):
        if not flags & flag:
            continue
        text = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if flag == libvirt.VIR_DOMAIN_AFFECT_CONFIG else 0)
        now = mirrored_nics(text)
        if (nic in now) == wanted:
            continue
        names = now - {nic} | ({nic} if wanted else set())
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, mirroring_metadata(names, namespaced=False) if names else None,
                        METADATA_KEY if names else None, METADATA_NS, flag)


def sync_quietly(conn: libvirt.virConnect) -> None:
    """After a VM or vNIC went away: a failure to clean up is logged, not the caller's (the next sync retries)."""
    try:
        sync(conn)
    except (FailedPrecondition, NetlinkError, OSError, libvirt.libvirtError) as err:
        log.warning("port mirroring: could not tidy the bridges: %s", err)


def wishes(conn: libvirt.virConnect) -> list[MirrorWish]:
    found: list[MirrorWish] = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            found += wishes_of(dom.name(), dom.XMLDesc())
        except libvirt.libvirtError:
            continue  # stopped between listing and reading: its tap is gone too
    return found


def sync(conn: libvirt.virConnect) -> list[BridgePlan]:
    """Every bridge of this host mirrors exactly to the taps of running vNICs that want it; the changes made.

    FailedPrecondition when the kernel refuses (e.g. a bridge whose ingress is someone else's qdisc).
    """
    if conn.getType().lower() == "test":
        return []  # the test driver has no taps, and the machine's bridges are not its
    wanted = wishes(conn)
    with closing(IPRoute()) as ipr:
        ifindex = {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()}
        by_bridge = wanted_by_bridge(wanted, ifindex)
        _, bridges = host_devices()
        done = []
        for bridge in sorted(bridges | set(by_bridge)):
            if bridge not in ifindex:
                continue
            current = read_bridge(ipr, bridge, ifindex[bridge])
            taps = by_bridge.get(bridge, frozenset())
            if taps and current.other_ingress:
                raise FailedPrecondition(f"port mirroring on bridge {bridge!r}: its ingress hook holds another "
                                         "qdisc (ingress); mirroring needs clsact there")
            plan = plan_bridge(current, taps)
            if not plan.empty:
                _apply(ipr, ifindex[bridge], plan)
                done.append(plan)
        return done


def read_bridge(ipr: IPRoute, bridge: str, index: int) -> BridgeMirrors:
    qdiscs = [q for q in ipr.get_qdiscs(index) if q["handle"] == CLSACT]
    kinds = {q.get_attr("TCA_KIND") for q in qdiscs}
    promisc = bool(ipr.get_links(index)[0]["flags"] & IFF_PROMISC)
    if "clsact" not in kinds:
        return BridgeMirrors(bridge, promisc=promisc, other_ingress="ingress" in kinds)
    ours: list[frozenset[int]] = []
    foreign = 0
    for parent in HOOK_PARENTS:
        taps = set()
        for f in ipr.get_filters(index, parent=parent):
            if f["parent"] != parent or f.get_attr("TCA_KIND") is None:
                continue
            if f["info"] >> 16 != MIRROR_PRIO:
                foreign += 1
                continue
            taps.update(_mirred_targets(f))
        ours.append(frozenset(taps))
    return BridgeMirrors(bridge, clsact=True, ours=tuple(ours), foreign_filters=foreign, promisc=promisc)


def _mirred_targets(msg) -> set[int]:
    found = set()
    options = msg.get_attr("TCA_OPTIONS")
    acts = options.get_attr("TCA_U32_ACT") if options is not None else None
    for _, act in (acts["attrs"] if acts is not None else []):
        if act.get_attr("TCA_ACT_KIND") == "mirred":
            parms = act.get_attr("TCA_ACT_OPTIONS").get_attr("TCA_MIRRED_PARMS")
            found.add(parms["ifindex"])
    return found


def _apply(ipr: IPRoute, index: int, plan: BridgePlan) -> None:
    log.info("port mirroring on %s: %s", plan.bridge, plan)
    try:
        if plan.add_clsact:
            ipr.tc("add", "clsact", index)
        if plan.clear_ours:
            for parent in HOOK_PARENTS:
                _quietly_absent(lambda: ipr.tc("del-filter", "u32", index, parent=parent, prio=MIRROR_PRIO, target=0,
                                               protocol=ETH_P_ALL))
        for tap in plan.mirror_to:
            for parent in HOOK_PARENTS:
                ipr.tc("add-filter", "u32", index, parent=parent, prio=MIRROR_PRIO, protocol=ETH_P_ALL, target=0,
                       keys=["0x0/0x0+0"],
                       action={"kind": "mirred", "direction": "egress", "action": "mirror", "ifindex": tap})
        if plan.remove_clsact:
            _quietly_absent(lambda: ipr.tc("del", "clsact", index))
        if plan.promisc is not None:
            ipr.link("set", index=index, flags=IFF_PROMISC if plan.promisc else 0, change=IFF_PROMISC)
    except NetlinkError as err:
        raise FailedPrecondition(f"port mirroring on bridge {plan.bridge!r}: the kernel refused: {err}") from err


def _quietly_absent(action) -> None:
    try:
        action()
    except NetlinkError as err:
        if err.code not in (2, 22):  # ENOENT, EINVAL: nothing of ours there any more
            raise
