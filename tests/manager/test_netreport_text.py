"""The manager's report of a host reads exactly like `ip addr show` and `brctl show` there."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from agent.net.report.state import read_state
from manager.cli.netreport_text import render_brctl_show, render_ip_addr
from tests.fixtures.netns import Namespace, without_lifetimes
from virtfleet.v1 import netstate_pb2

pytestmark = pytest.mark.lab

needs_brctl = pytest.mark.skipif(shutil.which("brctl") is None, reason="brctl (Debian package bridge-utils) is not installed")


@pytest.fixture(scope="module")
def management_lab(module_netns_factory: Any) -> tuple[Namespace, Namespace]:
    """Seed 004's host: eth0 (peer in a switch namespace) under ovirtmgmt with 192.0.2.11/24, and a tap."""
    host, switch = module_netns_factory(), module_netns_factory()
    host.ip("link", "add", "eth0", "type", "veth", "peer", "name", "uplink0", "netns", switch.name)
    switch.ip("link", "set", "uplink0", "up")
    host.ip("link", "add", "ovirtmgmt", "type", "bridge", "stp_state", "0")
    host.ip("link", "set", "eth0", "master", "ovirtmgmt", "up")
    host.ip("link", "set", "ovirtmgmt", "up")
    host.ip("addr", "add", "192.0.2.11/24", "brd", "+", "dev", "ovirtmgmt")
    host.ip("tuntap", "add", "vnet0", "mode", "tap")
    host.ip("link", "set", "vnet0", "master", "ovirtmgmt")
    host.settle()
    return host, switch


@pytest.fixture(scope="module")
def management_host(management_lab: tuple[Namespace, Namespace]) -> Namespace:
    return management_lab[0]


@pytest.fixture(scope="module")
def busy_host(module_netns_factory: Any) -> Namespace:
    """Everything else `ip` has a way of printing: M-DOWN, NO-CARRIER, peers here, groups, lifetimes."""
    host = module_netns_factory()
    ip = host.ip
    ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ip("link", "set", "v1", "up")
    ip("link", "add", "link", "v1", "name", "mvtap0", "type", "macvtap", "mode", "vepa")
    ip("link", "add", "link", "v1", "name", "mvlan0", "type", "macvlan", "mode", "private")
    ip("link", "add", "zz", "type", "bridge", "stp_state", "1")
    ip("link", "add", "br-a", "type", "bridge")
    ip("link", "set", "v2", "master", "br-a", "group", "9", "txqueuelen", "0", "mtu", "9000")
    ip("tuntap", "add", "tun0", "mode", "tun")
    ip("link", "set", "tun0", "up")  # nobody reads it: NO-CARRIER
    ip("tuntap", "add", "tapz", "mode", "tap")
    ip("link", "set", "tapz", "master", "br-a")
    ip("addr", "add", "10.1.0.1/16", "dev", "v1", "valid_lft", "600", "preferred_lft", "300")
    ip("addr", "add", "10.1.0.2/16", "dev", "v1", "label", "v1:two", "noprefixroute")
    ip("addr", "add", "2001:db8::1/64", "dev", "v1", "nodad")
    host.settle()
    return host


def _state(namespace: Namespace) -> netstate_pb2.NetworkState:
    with namespace.iproute() as ipr:
        return read_state(ipr)


@pytest.mark.parametrize("topology", ["management_host", "busy_host"])
def test_render_ip_addr_equals_ip_addr_show(topology: str, request: pytest.FixtureRequest) -> None:
    host: Namespace = request.getfixturevalue(topology)
    rendered = render_ip_addr(_state(host))
    assert without_lifetimes(rendered) == without_lifetimes(host.exec("ip", "addr", "show"))


def test_peer_namespace_is_shown_by_name(management_lab: tuple[Namespace, Namespace]) -> None:
    host, switch = management_lab
    lines = render_ip_addr(_state(host)).splitlines()
    eth0 = next(i for i, line in enumerate(lines) if ": eth0@if" in line)
    assert lines[eth0 + 1].endswith(f" link-netns {switch.name}")


@needs_brctl
@pytest.mark.parametrize("topology", ["management_host", "busy_host"])
def test_render_brctl_show_equals_brctl_show(topology: str, request: pytest.FixtureRequest) -> None:
    host: Namespace = request.getfixturevalue(topology)
    assert render_brctl_show(_state(host)) == host.exec("brctl", "show")


def test_render_brctl_show_without_bridges_is_the_header() -> None:
    assert render_brctl_show(netstate_pb2.NetworkState()) == "bridge name\tbridge id\t\tSTP enabled\tinterfaces\n"


def test_render_ip_addr_glues_m_down_with_its_own_comma() -> None:
    link = netstate_pb2.Link(index=7, name="x", flags=["M-DOWN"], mtu=1500, link_type="none", group="default")
    link.link_netnsid = -1
    assert render_ip_addr(netstate_pb2.NetworkState(links=[link])).startswith("7: x: <,M-DOWN> mtu 1500 group default \n")
