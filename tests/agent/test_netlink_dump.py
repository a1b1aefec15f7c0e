"""The struct-decoded netlink reader reports exactly what pyroute2's decoding of the same dumps reports.

pyroute2 stays here as the reference: it decodes every attribute generically,
so a field the fast reader takes from the wrong offset, type or attribute shows
up as a difference. Key fields are also checked against `ip -j`.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net.netlink import dump as netlink_dump
from agent.net.netlink import names
from agent.net.netlink.socket import INFINITY_LIFE_TIME
from agent.net.report.state import read_state
from tests.fixtures.netns import Namespace
from virtfleet.v1 import netstate_pb2

pytestmark = pytest.mark.lab

MACVTAP_MODES = ("vepa", "bridge", "private")
MACVLAN_MODES = ("vepa", "bridge", "private", "source")


@pytest.fixture(scope="module")
def host(module_netns_factory: Callable[[], Namespace]) -> tuple[Namespace, Namespace]:
    """Every kind of link and address a virtualization host shows, some of each state (read only)."""
    host, switch = module_netns_factory(), module_netns_factory()
    ip = host.ip
    ip("link", "add", "eth0", "mtu", "9000", "type", "veth", "peer", "name", "uplink0", "netns", switch.name)
    ip("link", "add", "eth1", "type", "veth", "peer", "name", "uplink1", "netns", switch.name)
    switch.ip("link", "set", "uplink0", "up")
    ip("link", "set", "eth0", "up")  # eth1 stays down
    ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ip("link", "set", "v1", "up")  # its peer stays down: NO-CARRIER and M-DOWN
    ip("link", "add", "br0", "type", "bridge", "stp_state", "0")
    ip("link", "add", "br1", "type", "bridge", "stp_state", "1", "priority", "4096")
    ip("link", "add", "br2", "type", "bridge")  # no ports, down
    ip("tuntap", "add", "tap0", "mode", "tap")
    ip("link", "set", "v2", "master", "br0")
    ip("link", "set", "tap0", "master", "br0")
    ip("link", "set", "eth1", "master", "br1")
    ip("link", "set", "br0", "mtu", "1400", "up")
    ip("link", "set", "br1", "up")
    for mode in MACVTAP_MODES:
        ip("link", "add", "link", "eth0", "name", f"mvt{mode}", "type", "macvtap", "mode", mode)
    for mode in MACVLAN_MODES:
        ip("link", "add", "link", "eth0", "name", f"mvl{mode}", "type", "macvlan", "mode", mode)
    ip("link", "add", "lower0", "type", "veth", "peer", "name", "lower1")
    ip("link", "add", "lower2", "type", "veth", "peer", "name", "lower3")
    ip("link", "add", "link", "lower0", "name", "mvtpassthru", "type", "macvtap", "mode", "passthru")
    ip("link", "add", "link", "lower2", "name", "mvlpassthru", "type", "macvlan", "mode", "passthru")
    ip("link", "set", "lower1", "group", "7", "txqueuelen", "0", "mtu", "1280")
    ip("link", "set", "mvtvepa", "up")
    ip("link", "set", "mvlbridge", "up")
    ip("link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "dev", "eth0")
    ip("addr", "add", "192.0.2.21/24", "brd", "+", "dev", "br0")
    ip("addr", "add", "192.0.2.22/24", "dev", "br0")  # secondary
    ip("addr", "add", "192.0.2.23/24", "dev", "br0", "label", "br0:alias")
    ip("addr", "add", "2001:db8::21/64", "dev", "br0", "nodad")
    ip("addr", "add", "2001:db8:1::5/64", "dev", "br0", "nodad", "noprefixroute")
    ip("addr", "add", "10.0.0.5/8", "dev", "eth0", "valid_lft", "3600", "preferred_lft", "1800")
    ip("addr", "add", "198.51.100.7/24", "dev", "eth0", "noprefixroute", "label", "eth0:ext")
    ip("addr", "add", "203.0.113.9/32", "peer", "203.0.113.10", "dev", "eth0")
    ip("addr", "add", "172.16.0.1/16", "dev", "br2")  # on a down link
    ip("route", "add", "default", "via", "192.0.2.1")
    ip("route", "add", "203.0.113.0/24", "via", "192.0.2.1", "metric", "7", "proto", "static")
    ip("route", "add", "198.18.0.0/15", "dev", "br0", "src", "192.0.2.22", "scope", "link")
    ip("route", "add", "10.99.0.0/16", "via", "10.0.0.1", "dev", "eth0", "proto", "dhcp", "metric", "100")
    ip("-6", "route", "add", "2001:db8:99::/48", "via", "2001:db8::1", "metric", "42")
    ip("-6", "route", "add", "default", "via", "2001:db8::1", "dev", "br0")
    host.settle()
    return host, switch


@pytest.fixture(scope="module")
def states(host: tuple[Namespace, Namespace]) -> tuple[netstate_pb2.NetworkState, netstate_pb2.NetworkState]:
    """(fast, reference), read back to back from the same namespace."""
    with host[0].iproute() as ipr:
        return netlink_dump.read_state(host[0].name), _reference_state(ipr)


def test_fast_reader_equals_pyroute2_reading(states: tuple[netstate_pb2.NetworkState, ...]) -> None:
    fast, reference = (_comparable(s) for s in states)
    assert [link.name for link in fast.links] == [link.name for link in reference.links]
    for ours, theirs in zip(fast.links, reference.links):
        assert ours == theirs, ours.name
    assert list(fast.routes) == list(reference.routes)
    assert fast == reference


def test_read_state_uses_the_fast_reader_and_sees_the_same(host: tuple[Namespace, Namespace], states) -> None:
    with host[0].iproute() as ipr:
        through_ipr = read_state(ipr)
    assert _comparable(through_ipr) == _comparable(states[0])


def test_every_field_the_report_carries_was_filled(states: tuple[netstate_pb2.NetworkState, ...]) -> None:
    """Guards the comparison: a field both readers left empty would compare equal and prove nothing."""
    fast = states[0]
    links = {link.name: link for link in fast.links}
    assert links["eth0"].link_netns and links["eth0"].link_netnsid >= 0 and links["eth0"].link_index
    lower1 = links["lower1"]
    assert (links["eth0"].mtu, lower1.mtu, lower1.group, lower1.txqlen) == (9000, 1280, "7", 0)
    assert "M-DOWN" in links["v1"].flags and links["v1"].parent == "v2"
    assert links["br1"].bridge.stp_enabled and not links["br0"].bridge.stp_enabled
    assert links["br1"].bridge.bridge_id.startswith("1000.")
    assert list(links["br0"].bridge.ports) == ["tap0", "v2"] and list(links["br1"].bridge.ports) == ["eth1"]
    assert links["eth1"].master == "br1" and links["tap0"].kind == "tun" and links["vx0"].kind == "vxlan"
    assert {links[f"mvl{m}"].macvtap_mode for m in (*MACVLAN_MODES, "passthru")} == {*MACVLAN_MODES, "passthru"}
    assert {links[f"mvt{m}"].macvtap_mode for m in (*MACVTAP_MODES, "passthru")} == {*MACVTAP_MODES, "passthru"}
    assert links["lo"].link_type == "loopback" and links["eth0"].broadcast == "ff:ff:ff:ff:ff:ff"
    assert links["br2"].oper_state == "DOWN" and links["lo"].oper_state == "UNKNOWN"
    br0 = {a.address: a for a in links["br0"].addresses}
    assert "secondary" in br0["192.0.2.22"].flags and br0["192.0.2.23"].label == "br0:alias"
    assert br0["192.0.2.21"].broadcast == "192.0.2.255" and "noprefixroute" in br0["2001:db8:1::5"].flags
    eth0 = {a.address: a for a in links["eth0"].addresses}
    assert 3590 <= eth0["10.0.0.5"].valid_lft <= 3600 and 1790 <= eth0["10.0.0.5"].preferred_lft <= 1800
    assert eth0["198.51.100.7"].label == "eth0:ext" and eth0["198.51.100.7"].valid_lft == -1
    routes = {(r.family, r.destination): r for r in fast.routes}
    assert routes[("inet", "203.0.113.0/24")].metric == 7 and routes[("inet", "203.0.113.0/24")].protocol == "static"
    with_source = routes[("inet", "198.18.0.0/15")]
    assert (with_source.source, with_source.scope) == ("192.0.2.22", "link")
    assert routes[("inet6", "2001:db8:99::/48")].gateway == "2001:db8::1"
    assert routes[("inet6", "default")].device == "br0"


def test_key_fields_match_ip_json(host: tuple[Namespace, Namespace], states) -> None:
    fast = states[0]
    theirs = {j["ifname"]: j for j in host[0].ip_json("-d", "addr", "show")}
    assert [link.index for link in fast.links] == sorted(j["ifindex"] for j in theirs.values())
    for link in fast.links:
        j = theirs[link.name]
        info = j.get("linkinfo", {})
        assert (link.index, list(link.flags), link.mtu, link.master, link.oper_state, link.kind, link.mac) == (
            j["ifindex"], j["flags"], j["mtu"], j.get("master", ""), j["operstate"], info.get("info_kind", ""),
            j.get("address", ""),
        ), link.name
        assert [(a.address, a.prefixlen, a.scope, a.label) for a in link.addresses] == [
            (a["local"], a["prefixlen"], a["scope"], a.get("label", "")) for a in j.get("addr_info", [])
        ], link.name
    routes = host[0].ip_json("route", "show", "table", "main") + host[0].ip_json("-6", "route", "show", "table", "main")
    assert sorted((r.destination, r.gateway, r.device, r.metric) for r in fast.routes) == sorted(
        (_destination(r["dst"]), r.get("gateway", ""), r.get("dev", ""), r.get("metric", 0)) for r in routes
    )


def test_many_links_span_many_reads_and_still_match(netns: Namespace) -> None:
    """A dump of hundreds of links comes in many socket reads; nothing is lost or doubled at the seams."""
    script = "".join(f"link add a{i} type veth peer name b{i}\nlink add br{i} type bridge\nlink set b{i} master br{i}\n"
                     f"addr add 10.{i // 250}.{i % 250}.1/24 dev br{i}\nlink set br{i} up\n" for i in range(120))
    _ip_batch(netns, script)
    for _ in range(3):  # the kernel's linkwatch may still flip a carrier between two reads: settle and read again
        netns.settle()
        with netns.iproute() as ipr:
            fast, reference = _comparable(netlink_dump.read_state(netns.name)), _comparable(_reference_state(ipr))
        if fast == reference:
            break
    assert len(fast.links) == 1 + 3 * 120
    assert [str(link) for link in fast.links] == [str(link) for link in reference.links]
    assert fast == reference


def test_reads_while_links_come_and_go_never_show_a_link_twice(netns: Namespace) -> None:
    """A dump the kernel interrupts (its table changed meanwhile) is read again, not half-believed."""
    _ip_batch(netns, "".join(f"link add s{i} type veth peer name t{i}\n" for i in range(100)))
    churn = "".join(f"link add c{i} type bridge\nlink del c{i}\n" for i in range(20))
    stop = threading.Event()

    def keep_changing() -> None:
        while not stop.is_set():
            _ip_batch(netns, churn)

    changer = threading.Thread(target=keep_changing)
    changer.start()
    try:
        for _ in range(8):
            indexes = [link.index for link in netlink_dump.read_state(netns.name).links]
            assert indexes == sorted(set(indexes))
    finally:
        stop.set()
        changer.join()


def test_vlan_reports_its_id_where_the_kernel_has_8021q(netns: Namespace) -> None:
    netns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    made = subprocess.run(["ip", "-n", netns.name, "link", "add", "link", "eth0", "name", "eth0.42", "type", "vlan",
                           "id", "42"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this kernel cannot make a VLAN (8021q missing): {made.stderr.strip()}")
    with netns.iproute() as ipr:
        fast, reference = netlink_dump.read_state(netns.name), _reference_state(ipr)
    assert _comparable(fast) == _comparable(reference)
    vlan = next(link for link in fast.links if link.name == "eth0.42")
    assert (vlan.kind, vlan.vlan_id, vlan.parent) == ("vlan", 42, "eth0")


def test_missing_namespace_is_an_error(netns: Namespace) -> None:
    with pytest.raises(OSError):
        netlink_dump.read_state(netns.name + "-gone")


# -- helpers --------------------------------------------------------------------------------------


def _ip_batch(netns: Namespace, script: str) -> None:
    done = subprocess.run(["ip", "-n", netns.name, "-batch", "-"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _destination(dst: str) -> str:
    if dst == "default" or "/" in dst:
        return dst
    return f"{dst}/{128 if ':' in dst else 32}"


def _comparable(state: netstate_pb2.NetworkState) -> netstate_pb2.NetworkState:
    """Without the read time, and with finite lifetimes rounded to the minute: they tick between two reads."""
    copy = netstate_pb2.NetworkState()
    copy.CopyFrom(state)
    copy.ClearField("taken_at")
    for link in copy.links:
        for address in link.addresses:
            if address.valid_lft > 0:
                address.valid_lft //= 60
            if address.preferred_lft > 0:
                address.preferred_lft //= 60
    return copy


# -- the reference: read_state as it was through pyroute2's decoding ------------------------------

_MODE_KINDS = {"macvtap": "IFLA_MACVTAP_MODE", "macvlan": "IFLA_MACVLAN_MODE"}


def _reference_state(ipr: IPRoute) -> netstate_pb2.NetworkState:
    link_msgs = sorted(ipr.link("dump", ext_mask=netlink_dump.RTEXT_FILTER_SKIP_STATS), key=lambda m: m["index"])
    flags_by_index = {m["index"]: m["flags"] for m in link_msgs}
    names_by_index = {m["index"]: m.get_attr("IFLA_IFNAME") for m in link_msgs}
    links = [_ref_link(m, names_by_index, flags_by_index) for m in link_msgs]
    by_index = {link.index: link for link in links}
    for msg in ipr.addr("dump"):
        if msg["index"] in by_index:
            by_index[msg["index"]].addresses.append(_ref_address(msg))
    ports: dict[str, list[str]] = {}
    for link in links:
        if link.master:
            ports.setdefault(link.master, []).append(link.name)
    for link, msg in zip(links, link_msgs):
        if link.kind == "bridge":
            link.bridge.ports.extend(sorted(ports.get(link.name, [])))
            data = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            link.bridge.stp_enabled = bool(data.get_attr("IFLA_BR_STP_STATE"))
            value = data.get_attr("IFLA_BR_BRIDGE_ID")
            link.bridge.bridge_id = f"{struct.pack('=H', value['prio']).hex()}.{value['addr'].replace(':', '')}"
    by_nsid = _ref_namespace_names(ipr)
    for link in links:
        if link.link_netnsid in by_nsid:
            link.link_netns = by_nsid[link.link_netnsid]
    state = netstate_pb2.NetworkState(hostname=os.uname().nodename, links=links)
    for msg in ipr.route("dump"):
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if table != 254 or msg["type"] != 1 or msg["family"] not in (socket.AF_INET, socket.AF_INET6):
            continue
        dst, oif = msg.get_attr("RTA_DST"), msg.get_attr("RTA_OIF")
        state.routes.add(
            family=names.family_name(msg["family"]), destination=f"{dst}/{msg['dst_len']}" if dst else "default",
            gateway=msg.get_attr("RTA_GATEWAY") or "", device=names_by_index.get(oif, "") if oif else "",
            metric=msg.get_attr("RTA_PRIORITY") or 0, scope=names.scope_name(msg["scope"]),
            protocol=names.protocol_name(msg["proto"]), source=msg.get_attr("RTA_PREFSRC") or "",
        )
    return state


def _ref_link(msg: Any, names_by_index: dict[int, str], flags_by_index: dict[int, int]) -> netstate_pb2.Link:
    arphrd = msg["ifi_type"]
    state = msg.get_attr("IFLA_OPERSTATE")
    link = netstate_pb2.Link(
        index=msg["index"], name=msg.get_attr("IFLA_IFNAME") or "",
        mac=names.hardware_address(msg.get_attr("IFLA_ADDRESS") or "", arphrd),
        broadcast=names.hardware_address(msg.get_attr("IFLA_BROADCAST") or "", arphrd),
        mtu=msg.get_attr("IFLA_MTU") or 0, oper_state=state if isinstance(state, str) else "",
        qdisc=msg.get_attr("IFLA_QDISC") or "", txqlen=msg.get_attr("IFLA_TXQLEN") or 0,
        link_type=names.link_type_name(arphrd), group=names.group_name(msg.get_attr("IFLA_GROUP") or 0),
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
            link.parent = names_by_index.get(parent, "")
            lower_down = not flags_by_index.get(parent, 0) & names.IFF_UP
    link.flags.extend(names.link_flags(msg["flags"], lower_down))
    info = msg.get_attr("IFLA_LINKINFO")
    if info:
        link.kind = info.get_attr("IFLA_INFO_KIND") or ""
        data = info.get_attr("IFLA_INFO_DATA")
        if data is not None and not isinstance(data, (str, bytes)):
            if link.kind in _MODE_KINDS:
                link.macvtap_mode = str(data.get_attr(_MODE_KINDS[link.kind]) or "")
            elif link.kind == "vlan":
                link.vlan_id = data.get_attr("IFLA_VLAN_ID") or 0
    return link


def _ref_address(msg: Any) -> netstate_pb2.Address:
    family, flags = msg["family"], msg.get_attr("IFA_FLAGS")
    cache = msg.get_attr("IFA_CACHEINFO") or {}

    def lifetime(seconds: int | None) -> int:
        return -1 if seconds is None or seconds == INFINITY_LIFE_TIME else seconds

    return netstate_pb2.Address(
        family=names.family_name(family), address=msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS") or "",
        prefixlen=msg["prefixlen"], broadcast=msg.get_attr("IFA_BROADCAST") or "", scope=names.scope_name(msg["scope"]),
        label=msg.get_attr("IFA_LABEL") or "",
        flags=names.address_flags(msg["flags"] if flags is None else flags, family),
        valid_lft=lifetime(cache.get("ifa_valid")), preferred_lft=lifetime(cache.get("ifa_preferred")),
    )


def _ref_namespace_names(ipr: IPRoute) -> dict[int, str]:
    by_nsid = {}
    for entry in os.listdir(netlink_dump.NETNS_RUN_DIR):
        fd = os.open(os.path.join(netlink_dump.NETNS_RUN_DIR, entry), os.O_RDONLY)
        try:
            answer = ipr.get_netnsid(fd=fd)
        except (OSError, NetlinkError):
            continue
        finally:
            os.close(fd)
        nsid = answer.get("nsid") if answer else None
        if nsid is not None and 0 <= nsid < 0x7FFFFFFF:
            by_nsid[nsid] = entry
    return by_nsid
