"""The host side of a vNIC's link state: while its cable is out, its tap (or macvtap) is down too.

libvirt 9 changes only the guest side (QEMU's link status: the guest sees NO-CARRIER,
QEMU drops its frames). The host's side of the cable is the tap, which stays up with
carrier as long as QEMU holds it, so the bridge would keep the port forwarding and
the host would report a live port. The agent sets the tap's admin state to match:
down with the link, up again with it — so host and guest tell the same story.
Pure part: `wanted_states` from a running domain's XML; the rest is one netlink call.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from contextlib import closing

import libvirt
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtfleet.errors import FailedPrecondition

log = logging.getLogger(__name__)


def wanted_states(live_xml: str) -> dict[str, bool]:
    """Host device (vnetN, macvtapN) → whether it should be up, for every vNIC of a running domain."""
    found = {}
    for iface in ET.fromstring(live_xml).iterfind("devices/interface"):
        target, link = iface.find("target"), iface.find("link")
        if target is not None and target.get("dev"):
            found[target.get("dev", "")] = link is None or link.get("state") != "down"
    return found


def set_up(device: str, up: bool) -> None:
    with closing(IPRoute()) as ipr:
        _set(ipr, device, up)


def _set(ipr: IPRoute, device: str, up: bool) -> None:
    try:
        index = ipr.link_lookup(ifname=device)
        if not index:
            return  # gone with its VM: nothing to say about its state
        ipr.link("set", index=index[0], state="up" if up else "down")
    except NetlinkError as err:
        raise FailedPrecondition(f"setting the host side of the vNIC on {device} {'up' if up else 'down'}: "
                                 f"{err}") from err


def apply_domain(conn: libvirt.virConnect, live_xml: str) -> None:
    """One domain just started or plugged: libvirt brought every tap up, so only those whose link is down change.

    A start pays nothing (not a netlink socket) unless the domain has a vNIC with its cable out; other
    domains are not read: their devices did not change."""
    if conn.getType().lower() == "test":
        return
    down = [device for device, up in wanted_states(live_xml).items() if not up]
    if down:
        with closing(IPRoute()) as ipr:
            for device in down:
                _set(ipr, device, False)
