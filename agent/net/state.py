"""Read the host's whole network state from the kernel in three netlink dumps.

The result carries what `ip addr show`, `ip route` (main table) and
`brctl show` print, already spelled the way they print it, so the manager can
render a report that matches the host byte for byte without a netlink socket.
One dump each of links, addresses and routes keeps a read cheap enough to run
on every kernel event; nothing here asks the kernel about a single link.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net import kernel_names as names
from virtfleet.v1 import netstate_pb2

NETNS_RUN_DIR = "/run/netns"
MAIN_TABLE = 254
RTN_UNICAST = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
_MODE_KINDS = {"macvtap": "IFLA_MACVTAP_MODE", "macvlan": "IFLA_MACVLAN_MODE"}

Message = Any  # a parsed pyroute2 netlink message


def read_state(ipr: IPRoute) -> netstate_pb2.NetworkState:
    """Everything an admin would see on this host: one dump each of links, addresses, routes."""
    taken_at = Timestamp()
    taken_at.GetCurrentTime()
    link_msgs = sorted(ipr.link("dump", ext_mask=RTEXT_FILTER_SKIP_STATS), key=lambda m: m["index"])
    addr_msgs = ipr.addr("dump")
    route_msgs = ipr.route("dump")

    flags_by_index = {m["index"]: m["flags"] for m in link_msgs}
    names_by_index = {m["index"]: m.get_attr("IFLA_IFNAME") for m in link_msgs}
    links = [_link(m, names_by_index, flags_by_index) for m in link_msgs]
    by_index = {link.index: link for link in links}

    for msg in addr_msgs:
        link = by_index.get(msg["index"])
        if link is not None:
            link.addresses.append(_address(msg))
    _fill_bridges(links, link_msgs)
    _name_peer_namespaces(ipr, links)

    state = netstate_pb2.NetworkState(hostname=os.uname().nodename, links=links, taken_at=taken_at)
    state.routes.extend(_routes(route_msgs, names_by_index))
    return state


def _link(msg: Message, names_by_index: dict[int, str], flags_by_index: dict[int, int]) -> netstate_pb2.Link:
    arphrd = msg["ifi_type"]
    link = netstate_pb2.Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME") or "",
        mac=names.hardware_address(msg.get_attr("IFLA_ADDRESS") or "", arphrd),
        broadcast=names.hardware_address(msg.get_attr("IFLA_BROADCAST") or "", arphrd),
        mtu=msg.get_attr("IFLA_MTU") or 0,
        oper_state=_oper_state(msg.get_attr("IFLA_OPERSTATE")),
        qdisc=msg.get_attr("IFLA_QDISC") or "",
        txqlen=msg.get_attr("IFLA_TXQLEN") or 0,
        link_type=names.link_type_name(arphrd),
        group=names.group_name(msg.get_attr("IFLA_GROUP") or 0),
        link_netnsid=-1,
    )
    master = msg.get_attr("IFLA_MASTER")
    if master:
        link.master = names_by_index.get(master, f"if{master}")
    permaddr = msg.get_attr("IFLA_PERM_ADDRESS")
    if permaddr and permaddr != msg.get_attr("IFLA_ADDRESS"):
        link.permaddr = names.hardware_address(permaddr, arphrd)

    lower_down = False
    parent = msg.get_attr("IFLA_LINK")
    if parent:
        link.link_index = parent
        netnsid = msg.get_attr("IFLA_LINK_NETNSID")
        if netnsid is not None:
            link.link_netnsid = netnsid
        else:
            # ip shows M-DOWN when the parent here is down or unknown to it.
            link.parent = names_by_index.get(parent, "")
            lower_down = not flags_by_index.get(parent, 0) & names.IFF_UP
    link.flags.extend(names.link_flags(msg["flags"], lower_down))
    _fill_kind(link, msg)
    return link


def _oper_state(value: Any) -> str:
    """pyroute2 names the known states; an unknown one is shown as ip shows it."""
    if isinstance(value, str):
        return value
    return f"{value:#x}" if value is not None else ""


def _fill_kind(link: netstate_pb2.Link, msg: Message) -> None:
    info = msg.get_attr("IFLA_LINKINFO")
    if not info:
        return
    link.kind = info.get_attr("IFLA_INFO_KIND") or ""
    data = info.get_attr("IFLA_INFO_DATA")
    if data is None or isinstance(data, (str, bytes)):
        return
    if link.kind in _MODE_KINDS:
        link.macvtap_mode = str(data.get_attr(_MODE_KINDS[link.kind]) or "")
    elif link.kind == "vlan":
        link.vlan_id = data.get_attr("IFLA_VLAN_ID") or 0


def _fill_bridges(links: list[netstate_pb2.Link], link_msgs: list[Message]) -> None:
    ports: dict[str, list[str]] = {}
    for link in links:
        if link.master:
            ports.setdefault(link.master, []).append(link.name)
    for link, msg in zip(links, link_msgs):
        if link.kind != "bridge":
            continue
        link.bridge.ports.extend(sorted(ports.get(link.name, [])))
        data = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        if data is not None and not isinstance(data, (str, bytes)):
            link.bridge.stp_enabled = bool(data.get_attr("IFLA_BR_STP_STATE"))
            link.bridge.bridge_id = _bridge_id(data.get_attr("IFLA_BR_BRIDGE_ID"))


def _bridge_id(value: dict[str, Any] | None) -> str:
    """brctl prints the two priority bytes as they sit on the wire, then the MAC."""
    if not value:
        return ""
    prio = struct.pack("=H", value["prio"]).hex()  # pyroute2 unpacked them in host order
    return f"{prio}.{value['addr'].replace(':', '')}"


def _address(msg: Message) -> netstate_pb2.Address:
    family = msg["family"]
    local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS") or ""
    flags = msg.get_attr("IFA_FLAGS")
    cache = msg.get_attr("IFA_CACHEINFO") or {}
    return netstate_pb2.Address(
        family=names.family_name(family),
        address=local,
        prefixlen=msg["prefixlen"],
        broadcast=msg.get_attr("IFA_BROADCAST") or "",
        scope=names.scope_name(msg["scope"]),
        label=msg.get_attr("IFA_LABEL") or "",
        flags=names.address_flags(msg["flags"] if flags is None else flags, family),
        valid_lft=_lifetime(cache.get("ifa_valid")),
        preferred_lft=_lifetime(cache.get("ifa_preferred")),
    )


def _lifetime(seconds: int | None) -> int:
    return -1 if seconds is None or seconds == names.INFINITY_LIFE_TIME else seconds


def _routes(msgs: Iterable[Message], names_by_index: dict[int, str]) -> list[netstate_pb2.Route]:
    routes = []
    for msg in msgs:
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if table != MAIN_TABLE or msg["type"] != RTN_UNICAST:
            continue
        if msg["family"] not in (socket.AF_INET, socket.AF_INET6):
            continue
        dst = msg.get_attr("RTA_DST")
        oif = msg.get_attr("RTA_OIF")
        routes.append(
            netstate_pb2.Route(
                family=names.family_name(msg["family"]),
                destination=f"{dst}/{msg['dst_len']}" if dst else "default",
                gateway=msg.get_attr("RTA_GATEWAY") or "",
                device=names_by_index.get(oif, "") if oif else "",
                metric=msg.get_attr("RTA_PRIORITY") or 0,
                scope=names.scope_name(msg["scope"]),
                protocol=names.protocol_name(msg["proto"]),
                source=msg.get_attr("RTA_PREFSRC") or "",
            )
        )
    return routes


def _name_peer_namespaces(ipr: IPRoute, links: list[netstate_pb2.Link]) -> None:
    """Give a peer namespace the name `ip` would print (link-netns NAME).

    Only named namespaces (files in /run/netns) have names; the kernel tells
    which nsid each one has from here without allocating new ids.
    """
    wanted = {link.link_netnsid for link in links if link.link_netnsid >= 0}
    if not wanted:
        return
    by_nsid = namespace_names(ipr)
    for link in links:
        if link.link_netnsid in by_nsid:
            link.link_netns = by_nsid[link.link_netnsid]


def namespace_names(ipr: IPRoute) -> dict[int, str]:
    """nsid -> name of the named namespaces this namespace has an id for."""
    try:
        entries = os.listdir(NETNS_RUN_DIR)
    except OSError:
        return {}
    by_nsid: dict[int, str] = {}
    for entry in entries:
        try:
            fd = os.open(os.path.join(NETNS_RUN_DIR, entry), os.O_RDONLY)
        except OSError:
            continue
        try:
            answer = ipr.get_netnsid(fd=fd)
        except (OSError, NetlinkError):  # a namespace going away under us
            continue
        finally:
            os.close(fd)
        nsid = answer.get("nsid") if answer else None
        if nsid is not None and 0 <= nsid < 0x7FFFFFFF:
            by_nsid[nsid] = entry
    return by_nsid
