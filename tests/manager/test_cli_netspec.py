"""What admins type after --attach / --bond becomes exactly the request they meant."""
from __future__ import annotations

import click
import pytest

from manager.cli.networks import parse_attach, parse_bond


def test_plain_attachment():
    att = parse_attach("vmnet=eth1")
    assert (att.network, att.nic, att.ipv4.method, att.default_route) == ("vmnet", "eth1", "", False)


def test_static_attachment_with_netmask_gateway_and_default_route():
    att = parse_attach("ovirtmgmt=eth0:static=192.0.2.11/255.255.255.0,gateway=192.0.2.1,default-route")
    assert (att.ipv4.method, att.ipv4.address, att.ipv4.prefixlen, att.ipv4.gateway) == \
        ("static", "192.0.2.11", 24, "192.0.2.1")
    assert att.default_route


def test_dhcp_attachment():
    assert parse_attach("display=bond0:dhcp").ipv4.method == "dhcp"


@pytest.mark.parametrize("text", ["vmnet", "=eth0", "vmnet=", "vmnet=eth0:static=10.0.0.1",
                                  "vmnet=eth0:bootp", "vmnet=eth0:static=10.0.0.1/33"])
def test_malformed_attachment_is_refused(text):
    with pytest.raises(click.BadParameter):
        parse_attach(text)


def test_bond_with_mode_and_options():
    bond = parse_bond("bond0=eth1,eth2:mode=1,miimon=100")
    assert (bond.name, list(bond.slaves), bond.mode, dict(bond.options)) == \
        ("bond0", ["eth1", "eth2"], "1", {"miimon": "100"})


@pytest.mark.parametrize("text", ["bond0", "=eth1,eth2", "bond0=eth1,eth2:mode"])
def test_malformed_bond_is_refused(text):
    with pytest.raises(click.BadParameter):
        parse_bond(text)
