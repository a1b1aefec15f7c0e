"""The host's whole network state from raw rtnetlink dumps, decoded with `struct`.

pyroute2 builds a Python object per message and per attribute; at a thousand
links and more that alone costs a large part of a second, and the agent reads
the full state before and after every setupNetworks and on every kernel event.
Here one NETLINK_ROUTE socket in the target namespace asks for the links (stats
skipped), addresses and main-table routes, and each message is walked once over
its bytes: only the attributes the report shows are decoded. The result is the
same `NetworkState` the report renders byte for byte like `ip addr show`.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from google.protobuf.timestamp_pb2 import Timestamp

from agent.net.netlink import names
from agent.net.netlink.socket import (
    IFA_ADDRESS, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IFF_UP, IFLA_ADDRESS, IFLA_BR_BRIDGE_ID,
    IFLA_BR_STP_STATE, IFLA_BROADCAST, IFLA_EXT_MASK, IFLA_GROUP, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
    IFLA_LINK, IFLA_LINK_NETNSID, IFLA_LINKINFO, IFLA_MACVLAN_MODE, IFLA_MASTER, IFLA_MTU, IFLA_OPERSTATE,
    IFLA_PERM_ADDRESS, IFLA_QDISC, IFLA_TXQLEN, IFLA_VLAN_ID, IFINFO, INFINITY_LIFE_TIME, NETNS_RUN_DIR, NETNSA_FD,
    NETNSA_NSID, RT_TABLE_MAIN, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE,
    RTEXT_FILTER_SKIP_STATS, RTM_GETADDR, RTM_GETLINK, RTM_GETNSID, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK,
    RTM_NEWNSID, RTM_NEWROUTE, RTN_UNICAST, RtnlSocket, find_attrs, pack_attr,
)
from virtfleet.v1 import netstate_pb2

DUMP_ATTEMPTS = 5  # then the last reading stands, each link once, as ip shows an interrupted dump

# pyroute2's names, which the report has always carried (ip prints the same words).
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
MACVLAN_MODES = {0: "none", 1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
_MODE_KINDS = ("macvtap", "macvlan")

_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_U16 = struct.Struct("=H")
_CACHEINFO = struct.Struct("=II")  # ifa_prefered, ifa_valid
_ADDR_LEN = {socket.AF_INET: 4, socket.AF_INET6: 16}

# The attributes each decoder reads; the others are stepped over.
_LINK_ATTRS = frozenset({IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC, IFLA_MASTER,
                         IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_GROUP, IFLA_LINK_NETNSID, IFLA_PERM_ADDRESS})
_INFO_ATTRS = frozenset({IFLA_INFO_KIND, IFLA_INFO_DATA})
_DATA_ATTRS = {"bridge": frozenset({IFLA_BR_STP_STATE, IFLA_BR_BRIDGE_ID}), "vlan": frozenset({IFLA_VLAN_ID}),
               "macvlan": frozenset({IFLA_MACVLAN_MODE}), "macvtap": frozenset({IFLA_MACVLAN_MODE})}
_ADDRESS_ATTRS = frozenset({IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS})
_ROUTE_ATTRS = frozenset({RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE})


def read_state(netns: str | None = None) -> netstate_pb2.NetworkState:
    """Everything an admin would see in `netns` (None: the caller's): one dump each of links, addresses, routes."""
    taken_at = Timestamp()
    taken_at.GetCurrentTime()
    with RtnlSocket(netns) as sock:
        for _ in range(DUMP_ATTEMPTS):  # a dump the kernel marks interrupted may miss or repeat entries
            sock.interrupted = False
            link_rows = sorted({row[0]: row for row in _links(sock)}.values(), key=lambda row: row[0])
            addresses = _addresses(sock)
            route_rows = [row for family in (socket.AF_INET, socket.AF_INET6) for row in _routes(sock, family)]
            if not sock.interrupted:
                break
        names_by_index = {row[0]: row[1] for row in link_rows}
        flags_by_index = {row[0]: row[2] for row in link_rows}
        state = netstate_pb2.NetworkState(hostname=os.uname().nodename, taken_at=taken_at)
        peers = _build_links(state, link_rows, addresses, names_by_index, flags_by_index)
        if peers:
            by_nsid = namespace_names(sock)
            for link in peers:
                if link.link_netnsid in by_nsid:
                    link.link_netns = by_nsid[link.link_netnsid]
    for family, dst, dst_len, gateway, oif, metric, scope, proto, source in route_rows:
        state.routes.add(
            family=family,
            destination=f"{dst}/{dst_len}" if dst else "default",
            gateway=gateway,
            device=names_by_index.get(oif, "") if oif else "",
            metric=metric,
            scope=names.scope_name(scope),
            protocol=names.protocol_name(proto),
            source=source,
        )
    return state


def namespace_names(sock: RtnlSocket) -> dict[int, str]:
    """nsid -> name of the named namespaces (files in /run/netns) the socket's namespace has an id for.

    Asking with the namespace's fd never allocates a new id.
    """
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
            nsid = _nsid(sock, fd)
        except OSError:  # a namespace going away under us
            continue
        finally:
            os.close(fd)
        if nsid is not None and 0 <= nsid < 0x7FFFFFFF:
            by_nsid[nsid] = entry
    return by_nsid


# -- building the report --------------------------------------------------------------------------


def _build_links(
    state: netstate_pb2.NetworkState,
    rows: list[tuple],
    addresses: dict[int, list[dict]],
    names_by_index: dict[int, str],
    flags_by_index: dict[int, int],
) -> list[netstate_pb2.Link]:
    """Adds the links in index order; returns those whose peer lives in another namespace."""
    ports: dict[str, list[str]] = {}
    for row in rows:
        master = row[5]
        if master:
            ports.setdefault(names_by_index.get(master, f"if{master}"), []).append(row[1])
    peers = []
    for index, name, flags, fields, kind_fields, master, parent, netnsid, bridge in rows:
        link = state.links.add(index=index, name=name, link_netnsid=-1, **fields)
        if kind_fields:
            for key, value in kind_fields.items():
                setattr(link, key, value)
        if master:
            link.master = names_by_index.get(master, f"if{master}")
        lower_down = False
        if parent:
            link.link_index = parent
            if netnsid is not None:
                link.link_netnsid = netnsid
                peers.append(link)
            else:
                # ip shows M-DOWN when the parent here is down or unknown to it.
                link.parent = names_by_index.get(parent, "")
                lower_down = not flags_by_index.get(parent, 0) & IFF_UP
        link.flags.extend(names.link_flags(flags, lower_down))
        for address in addresses.get(index, ()):
            link.addresses.add(**address)
        if link.kind == "bridge":
            link.bridge.ports.extend(sorted(ports.get(name, [])))
            if bridge is not None:
                link.bridge.stp_enabled, link.bridge.bridge_id = bridge
    return peers


# -- decoding -------------------------------------------------------------------------------------


def _links(sock: RtnlSocket) -> Iterator[tuple]:
    """(index, name, flags, plain fields, kind fields, master, parent, parent netnsid, bridge) per link."""
    request = IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + pack_attr(IFLA_EXT_MASK, _U32.pack(RTEXT_FILTER_SKIP_STATS))
    for data, start, end in sock.dump(RTM_GETLINK, request, RTM_NEWLINK):
        _, arphrd, index, flags, _ = IFINFO.unpack_from(data, start)
        attrs = find_attrs(data, start + IFINFO.size, end, _LINK_ATTRS)
        mac = _hw(data, attrs.get(IFLA_ADDRESS))
        fields = {
            "mac": names.hardware_address(mac, arphrd) if mac else "",
            "mtu": _u32(data, attrs.get(IFLA_MTU)),
            "oper_state": _oper_state(data, attrs.get(IFLA_OPERSTATE)),
            "qdisc": _text(data, attrs.get(IFLA_QDISC)),
            "txqlen": _u32(data, attrs.get(IFLA_TXQLEN)),
            "link_type": names.link_type_name(arphrd),
            "group": names.group_name(_u32(data, attrs.get(IFLA_GROUP))),
        }
        broadcast = _hw(data, attrs.get(IFLA_BROADCAST))
        if broadcast:
            fields["broadcast"] = names.hardware_address(broadcast, arphrd)
        permaddr = _hw(data, attrs.get(IFLA_PERM_ADDRESS))
        if permaddr and permaddr != mac:
            fields["permaddr"] = names.hardware_address(permaddr, arphrd)
        span = attrs.get(IFLA_LINK_NETNSID)
        netnsid = _I32.unpack_from(data, span[0])[0] if span else None
        kind_fields, bridge = _kind(data, attrs.get(IFLA_LINKINFO))
        yield (index, _text(data, attrs.get(IFLA_IFNAME)), flags, fields, kind_fields,
               _u32(data, attrs.get(IFLA_MASTER)), _u32(data, attrs.get(IFLA_LINK)), netnsid, bridge)


def _kind(data: bytes, span: tuple[int, int] | None) -> tuple[dict, tuple[bool, str] | None]:
    """Kind-specific fields (kind, VLAN id, macvtap mode) and, for a bridge, (stp on, bridge id)."""
    if span is None:
        return {}, None
    info = find_attrs(data, *span, _INFO_ATTRS)
    kind = _text(data, info.get(IFLA_INFO_KIND))
    fields: dict = {"kind": kind} if kind else {}
    span = info.get(IFLA_INFO_DATA)
    if span is None or kind not in _DATA_ATTRS:
        return fields, None
    extra = find_attrs(data, *span, _DATA_ATTRS[kind])
    if kind in _MODE_KINDS:
        mode = extra.get(IFLA_MACVLAN_MODE)
        if mode is not None:
            value = _u32(data, mode)
            fields["macvtap_mode"] = MACVLAN_MODES.get(value, str(value))
    elif kind == "vlan":
        vlan = extra.get(IFLA_VLAN_ID)
        fields["vlan_id"] = _U16.unpack_from(data, vlan[0])[0] if vlan else 0
    elif kind == "bridge":
        bridge_id = extra.get(IFLA_BR_BRIDGE_ID)
        # brctl prints the two priority bytes as they sit on the wire, then the MAC.
        at = bridge_id[0] if bridge_id else 0
        text = f"{data[at:at + 2].hex()}.{data[at + 2:at + 8].hex()}" if bridge_id else ""
        return fields, (bool(_u32(data, extra.get(IFLA_BR_STP_STATE))), text)
    return fields, None


def _addresses(sock: RtnlSocket) -> dict[int, list[dict]]:
    """Address fields by link index, in the kernel's order (IPv4 first, as ip shows them)."""
    by_index: dict[int, list[dict]] = {}
    request = _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    for data, start, end in sock.dump(RTM_GETADDR, request, RTM_NEWADDR):
        family, prefixlen, flags, scope, index = _IFADDR.unpack_from(data, start)
        attrs = find_attrs(data, start + _IFADDR.size, end, _ADDRESS_ATTRS)
        span = attrs.get(IFA_FLAGS)
        if span is not None:
            flags = _U32.unpack_from(data, span[0])[0]
        span = attrs.get(IFA_CACHEINFO)
        preferred, valid = _CACHEINFO.unpack_from(data, span[0]) if span else (None, None)
        by_index.setdefault(index, []).append({
            "family": names.family_name(family),
            "address": _ip(data, attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS), family),
            "prefixlen": prefixlen,
            "broadcast": _ip(data, attrs.get(IFA_BROADCAST), family),
            "scope": names.scope_name(scope),
            "label": _text(data, attrs.get(IFA_LABEL)),
            "flags": names.address_flags(flags, family),
            "valid_lft": _lifetime(valid),
            "preferred_lft": _lifetime(preferred),
        })
    return by_index


def _routes(sock: RtnlSocket, family: int) -> Iterator[tuple]:
    """Unicast routes of the main table: (family, dst, dst_len, gateway, oif, metric, scope, protocol, source)."""
    request = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, 0, 0, 0, 0)  # the kernel filters by table (strict check)
    family_name = names.family_name(family)
    for data, start, end in sock.dump(RTM_GETROUTE, request, RTM_NEWROUTE):
        rt_family, dst_len, _, _, table, proto, scope, kind, _ = _RTMSG.unpack_from(data, start)
        attrs = find_attrs(data, start + _RTMSG.size, end, _ROUTE_ATTRS)
        table = _u32(data, attrs.get(RTA_TABLE)) or table
        if table != RT_TABLE_MAIN or kind != RTN_UNICAST or rt_family != family:
            continue
        yield (family_name, _ip(data, attrs.get(RTA_DST), family), dst_len, _ip(data, attrs.get(RTA_GATEWAY), family),
               _u32(data, attrs.get(RTA_OIF)), _u32(data, attrs.get(RTA_PRIORITY)), scope, proto,
               _ip(data, attrs.get(RTA_PREFSRC), family))


def _nsid(sock: RtnlSocket, fd: int) -> int | None:
    request = struct.pack("=Bxxx", socket.AF_UNSPEC) + pack_attr(NETNSA_FD, _U32.pack(fd))
    for data, start, end in sock.request(RTM_GETNSID, request, RTM_NEWNSID):
        span = find_attrs(data, start + 4, end, frozenset({NETNSA_NSID})).get(NETNSA_NSID)
        return _I32.unpack_from(data, span[0])[0] if span else None
    return None


def _u32(data: bytes, span: tuple[int, int] | None) -> int:
    return _U32.unpack_from(data, span[0])[0] if span else 0


def _text(data: bytes, span: tuple[int, int] | None) -> str:
    if not span:
        return ""
    return data[span[0]:span[1]].split(b"\0", 1)[0].decode(errors="replace")


def _hw(data: bytes, span: tuple[int, int] | None) -> str:
    return data[span[0]:span[1]].hex(":") if span else ""


def _ip(data: bytes, span: tuple[int, int] | None, family: int) -> str:
    if not span or span[1] - span[0] != _ADDR_LEN.get(family):
        return ""
    return socket.inet_ntop(family, data[span[0]:span[1]])


def _oper_state(data: bytes, span: tuple[int, int] | None) -> str:
    if not span:
        return ""
    value = data[span[0]]
    return OPER_STATES[value] if value < len(OPER_STATES) else f"{value:#x}"


def _lifetime(seconds: int | None) -> int:
    return -1 if seconds is None or seconds == INFINITY_LIFE_TIME else seconds
