"""read_state() reports what iproute2 reports, for every kind of link a host has."""

from __future__ import annotations

from typing import Any

import pytest
from pyroute2 import IPRoute

from agent.net.report import capabilities
from agent.net.report.state import read_state
from tests.fixtures.netns import Namespace
from virtfleet.v1 import netstate_pb2

pytestmark = pytest.mark.lab

FOREVER = 0xFFFFFFFF
MACVTAP_MODES = ("vepa", "bridge", "private")


@pytest.fixture(scope="module")
def host(module_netns_factory: Any) -> tuple[Namespace, Namespace]:
    """A host with a NIC to a switch, veths, bridges, a tap and macvtaps in every mode (read only)."""
    host, switch = module_netns_factory(), module_netns_factory()
    ip = host.ip
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "uplink0", "netns", switch.name)
    switch.ip("link", "set", "uplink0", "up")
    ip("link", "set", "eth0", "up")
    ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ip("link", "set", "v1", "up")  # its peer stays down: v1 shows NO-CARRIER and M-DOWN
    ip("link", "add", "br0", "type", "bridge", "stp_state", "0")
    ip("link", "add", "br1", "type", "bridge", "stp_state", "1")
    ip("tuntap", "add", "tap0", "mode", "tap")
    ip("link", "set", "v2", "master", "br0")
    ip("link", "set", "tap0", "master", "br0")
    ip("link", "set", "br0", "mtu", "1400", "up")
    ip("addr", "add", "192.0.2.21/24", "brd", "+", "dev", "br0")
    ip("addr", "add", "192.0.2.22/24", "dev", "br0")
    ip("addr", "add", "2001:db8::21/64", "dev", "br0", "nodad")
    ip("addr", "add", "10.0.0.5/8", "dev", "eth0", "valid_lft", "3600", "preferred_lft", "1800")
    ip("addr", "add", "198.51.100.7/24", "dev", "eth0", "noprefixroute", "label", "eth0:ext")
    for mode in MACVTAP_MODES:
        ip("link", "add", "link", "eth0", "name", f"mvt{mode}", "type", "macvtap", "mode", mode)
    ip("link", "add", "lower0", "type", "veth", "peer", "name", "lower1")
    ip("link", "add", "link", "lower0", "name", "mvtpassthru", "type", "macvtap", "mode", "passthru")
    ip("link", "add", "link", "eth0", "name", "mvlan0", "type", "macvlan", "mode", "bridge")
    ip("link", "set", "lower1", "group", "7", "txqueuelen", "0")
    ip("link", "set", "mvtvepa", "up")
    ip("route", "add", "default", "via", "192.0.2.1")
    ip("route", "add", "203.0.113.0/24", "via", "192.0.2.1", "metric", "7", "proto", "static")
    host.settle()
    return host, switch


@pytest.fixture(scope="module")
def state(host: tuple[Namespace, Namespace]) -> netstate_pb2.NetworkState:
    with host[0].iproute() as ipr:
        return read_state(ipr)


def test_links_match_ip_addr_json(host: tuple[Namespace, Namespace], state: netstate_pb2.NetworkState) -> None:
    theirs = host[0].ip_json("-d", "addr", "show")
    assert [link.index for link in state.links] == sorted(j["ifindex"] for j in theirs)
    assert {link.name: _ours(link) for link in state.links} == {j["ifname"]: _theirs(j) for j in theirs}


def test_addresses_match_ip_addr_json(host: tuple[Namespace, Namespace], state: netstate_pb2.NetworkState) -> None:
    theirs = {j["ifname"]: j.get("addr_info", []) for j in host[0].ip_json("addr", "show")}
    for link in state.links:
        assert [_our_address(a) for a in link.addresses] == [_their_address(a) for a in theirs[link.name]], link.name


def test_finite_lifetimes_are_seconds_and_forever_is_minus_one(state: netstate_pb2.NetworkState) -> None:
    eth0 = _link(state, "eth0")
    dynamic = next(a for a in eth0.addresses if a.address == "10.0.0.5")
    assert "dynamic" in dynamic.flags
    assert 3590 <= dynamic.valid_lft <= 3600 and 1790 <= dynamic.preferred_lft <= 1800
    static = next(a for a in eth0.addresses if a.address == "198.51.100.7")
    assert (static.valid_lft, static.preferred_lft, static.label) == (-1, -1, "eth0:ext")
    assert "noprefixroute" in static.flags


def test_macvtap_reports_its_mode_and_parent(state: netstate_pb2.NetworkState) -> None:
    for mode in (*MACVTAP_MODES, "passthru"):
        link = _link(state, f"mvt{mode}")
        assert (link.kind, link.macvtap_mode) == ("macvtap", mode)
    assert _link(state, "mvtvepa").parent == "eth0"
    assert _link(state, "mvtpassthru").parent == "lower0"
    assert (_link(state, "mvlan0").kind, _link(state, "mvlan0").macvtap_mode) == ("macvlan", "bridge")


def test_tap_reports_kind_tun(state: netstate_pb2.NetworkState) -> None:
    assert _link(state, "tap0").kind == "tun"


def test_veth_peer_in_other_namespace_is_named(host: tuple[Namespace, Namespace], state: netstate_pb2.NetworkState) -> None:
    eth0 = _link(state, "eth0")
    assert eth0.link_netnsid >= 0
    assert eth0.link_netns == host[1].name
    assert eth0.link_index == host[1].ip_json("link", "show", "uplink0")[0]["ifindex"]
    assert (_link(state, "v1").link_netnsid, _link(state, "v1").parent) == (-1, "v2")


def test_bridges_match_bridge_link_and_sysfs(host: tuple[Namespace, Namespace], state: netstate_pb2.NetworkState) -> None:
    ports: dict[str, list[str]] = {}
    for port in host[0].bridge_json("link", "show"):
        ports.setdefault(port["master"], []).append(port["ifname"])
    for name in ("br0", "br1"):
        bridge = _link(state, name).bridge
        assert list(bridge.ports) == sorted(ports.get(name, []))
        assert bridge.bridge_id == host[0].exec("cat", f"/sys/class/net/{name}/bridge/bridge_id").strip()
        stp = host[0].ip_json("-d", "link", "show", name)[0]["linkinfo"]["info_data"]["stp_state"]
        assert bridge.stp_enabled == bool(stp)
    assert list(_link(state, "br0").bridge.ports) == ["tap0", "v2"]


def test_routes_match_ip_route_json(host: tuple[Namespace, Namespace], state: netstate_pb2.NetworkState) -> None:
    theirs = [("inet", r) for r in host[0].ip_json("route", "show", "table", "main")]
    theirs += [("inet6", r) for r in host[0].ip_json("-6", "route", "show", "table", "main")]
    expected = sorted(_their_route(family, r) for family, r in theirs)
    assert sorted(_our_route(r) for r in state.routes) == expected


def test_nics_are_the_veth_to_the_switch(state: netstate_pb2.NetworkState) -> None:
    assert capabilities.nics(state) == ["eth0"]


def test_kernel_features_are_probed_without_leaving_devices(ipr: IPRoute, netns: Namespace) -> None:
    before = netns.ip("link", "show")
    features = capabilities.kernel_features(ipr, refresh=True)
    assert {"bridge", "tun", "veth", "macvlan", "macvtap"} <= set(features)
    assert netns.ip("link", "show") == before
    assert capabilities.kernel_features(ipr) == features


def _link(state: netstate_pb2.NetworkState, name: str) -> netstate_pb2.Link:
    return next(link for link in state.links if link.name == name)


def _ours(link: netstate_pb2.Link) -> dict[str, Any]:
    return {
        "index": link.index,
        "flags": list(link.flags),
        "mtu": link.mtu,
        "qdisc": link.qdisc,
        "master": link.master,
        "operstate": link.oper_state,
        "group": link.group,
        "txqlen": link.txqlen,
        "link_type": link.link_type,
        "address": link.mac,
        "broadcast": link.broadcast,
        "kind": link.kind,
        "mode": link.macvtap_mode,
        "link": link.parent or (f"if{link.link_index}" if link.link_netnsid >= 0 else ""),
        "link_netnsid": link.link_netnsid,
    }


def _theirs(j: dict[str, Any]) -> dict[str, Any]:
    info = j.get("linkinfo", {})
    return {
        "index": j["ifindex"],
        "flags": j["flags"],
        "mtu": j["mtu"],
        "qdisc": j.get("qdisc", ""),
        "master": j.get("master", ""),
        "operstate": j["operstate"],
        "group": j["group"],
        "txqlen": j.get("txqlen", 0),
        "link_type": j["link_type"],
        "address": j.get("address", ""),
        "broadcast": j.get("broadcast", ""),
        "kind": info.get("info_kind", ""),
        "mode": info.get("info_data", {}).get("mode", "") if info.get("info_kind") in ("macvtap", "macvlan") else "",
        "link": j.get("link") or (f"if{j['link_index']}" if "link_index" in j else ""),
        "link_netnsid": j.get("link_netnsid", -1),
    }


def _our_address(a: netstate_pb2.Address) -> tuple[Any, ...]:
    lifetimes = (a.valid_lft < 0, a.preferred_lft < 0)  # values tick; test_finite_lifetimes checks them
    return (a.family, a.address, a.prefixlen, a.broadcast, a.scope, a.label, sorted(a.flags), lifetimes)


_JSON_ADDRESS_KEYS = {"family", "local", "prefixlen", "broadcast", "scope", "label", "valid_life_time", "preferred_life_time"}


def _their_address(a: dict[str, Any]) -> tuple[Any, ...]:
    flags = sorted(key for key, value in a.items() if key not in _JSON_ADDRESS_KEYS and value is True)
    lifetimes = (a["valid_life_time"] == FOREVER, a["preferred_life_time"] == FOREVER)
    return (a["family"], a["local"], a["prefixlen"], a.get("broadcast", ""), a["scope"], a.get("label", ""), flags, lifetimes)


def _our_route(r: netstate_pb2.Route) -> tuple[Any, ...]:
    return (r.family, r.destination, r.gateway, r.device, r.metric, r.scope, r.protocol, r.source)


def _their_route(family: str, r: dict[str, Any]) -> tuple[Any, ...]:
    dst = r["dst"]
    if dst != "default" and "/" not in dst:
        dst += "/32" if family == "inet" else "/128"
    return (
        family,
        dst,
        r.get("gateway", ""),
        r.get("dev", ""),
        r.get("metric", 0),
        r.get("scope", "global"),
        r.get("protocol", "boot"),
        r.get("prefsrc", ""),
    )
