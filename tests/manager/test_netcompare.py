"""Out of sync is judged on typed, normalised values: equivalent forms never differ, real changes always do."""
from __future__ import annotations

import ipaddress

from hypothesis import given, strategies as st

from virtfleet.hostnet import netcompare
from virtfleet.v1 import hostnet_pb2, netstate_pb2

nic_names = st.sampled_from(["eth0", "eth1", "ens3", "bond0"])
net_names = st.sampled_from(["ovirtmgmt", "vmnet", "storage", "display"])


@st.composite
def attachments(draw):
    ip = ipaddress.IPv4Address(draw(st.integers(0x0A000001, 0x0AFFFFFE)))
    prefix = draw(st.integers(8, 30))
    network = ipaddress.IPv4Interface((ip, prefix)).network
    method = draw(st.sampled_from(["none", "static", ""]))
    gateway = ""
    if method == "static" and network.num_addresses > 4:
        gateway = str(next(h for h in network.hosts() if h != ip))
    return hostnet_pb2.NetworkAttachment(
        network=draw(net_names), nic=draw(nic_names), vlan=draw(st.sampled_from([0, 0, 10, 4094])),
        mtu=draw(st.sampled_from([0, 1500, 9000])), bridged=draw(st.booleans()),
        ipv4=hostnet_pb2.Ipv4Config(method=method, address=str(ip) if method == "static" else "",
                                    prefixlen=prefix if method == "static" else 0, gateway=gateway),
        default_route=bool(gateway) and draw(st.booleans()))


def carrying(att: hostnet_pb2.NetworkAttachment, *, extra_addresses: list[str], shuffle: int,
             link_order: int) -> netstate_pb2.NetworkState:
    """A state as a kernel that carries `att` reports it, in one of its many equivalent forms."""
    lay = netcompare.layout(att)
    mtu = netcompare.mtu(att.mtu)
    links = {lay.nic: netstate_pb2.Link(name=lay.nic, kind="bond" if lay.nic.startswith("bond") else "",
                                        mtu=max(mtu, 1500), flags=["BROADCAST", "UP"])}
    if lay.vlan:
        links[lay.device] = netstate_pb2.Link(name=lay.device, kind="vlan", vlan_id=lay.vlan, mtu=mtu,
                                              flags=["UP"], parent=lay.nic)
    if lay.bridge:
        links[lay.device].master = lay.bridge
        links[lay.bridge] = netstate_pb2.Link(name=lay.bridge, kind="bridge", mtu=mtu, flags=["UP", "LOWER_UP"])
    links[lay.device].mtu = mtu if lay.vlan or not lay.bridge else max(mtu, 1500)
    top = links[lay.top]
    addrs = [netstate_pb2.Address(family="inet", address=a.split("/")[0], prefixlen=int(a.split("/")[1]),
                                  scope="global", valid_lft=-1) for a in extra_addresses]
    if att.ipv4.method == "static":
        addrs.append(netstate_pb2.Address(family="inet", address=att.ipv4.address, prefixlen=att.ipv4.prefixlen,
                                          scope="global", flags=["noprefixroute"], valid_lft=-1))
    addrs.append(netstate_pb2.Address(family="inet6", address="fe80::1", prefixlen=64, scope="link"))
    shift = shuffle % len(addrs)
    top.addresses.extend(addrs[shift:] + addrs[:shift])
    routes = [netstate_pb2.Route(family="inet", destination="default", gateway="10.255.255.254", device="lo",
                                 metric=500)]
    if att.default_route:
        routes.append(netstate_pb2.Route(family="inet", destination="default", gateway=att.ipv4.gateway,
                                         device=lay.top, metric=0))
    ordered = list(links.values())
    shift = link_order % len(ordered)
    return netstate_pb2.NetworkState(links=ordered[shift:] + ordered[:shift], routes=routes[::-1])


def equivalent(att: hostnet_pb2.NetworkAttachment, form: int) -> hostnet_pb2.NetworkAttachment:
    """The same desire written differently: MTU 1500 vs 0, method "" vs "none"."""
    out = hostnet_pb2.NetworkAttachment()
    out.CopyFrom(att)
    if form & 1 and netcompare.mtu(out.mtu) == 1500:
        out.mtu = 1500 if out.mtu == 0 else 0
    if form & 2 and out.ipv4.method in ("", "none"):
        out.ipv4.method = "none" if out.ipv4.method == "" else ""
    return out


@given(attachments(), st.lists(st.sampled_from(["172.16.0.5/16", "192.168.7.1/24"]), unique=True),
       st.integers(0, 7), st.integers(0, 7), st.integers(0, 3))
def test_equivalent_forms_are_in_sync(att, extra, shuffle, link_order, form):
    state = carrying(att, extra_addresses=extra, shuffle=shuffle, link_order=link_order)
    assert netcompare.compare_attachment(equivalent(att, form), state) == []


@given(attachments(), st.sampled_from(["bridge-gone", "mtu", "address", "unplugged", "down"]))
def test_a_real_difference_is_always_reported(att, change):
    state = carrying(att, extra_addresses=[], shuffle=0, link_order=0)
    lay = netcompare.layout(att)
    links = {link.name: link for link in state.links}
    if change == "bridge-gone" and lay.bridge:
        state = netstate_pb2.NetworkState(links=[l for l in state.links if l.name != lay.bridge])
    elif change == "mtu":
        links[lay.top].mtu = netcompare.mtu(att.mtu) - 100
    elif change == "address" and att.ipv4.method == "static":
        del links[lay.top].addresses[:]
    elif change == "unplugged" and lay.bridge:
        links[lay.device].master = ""
    elif change == "down":
        links[lay.top].flags.remove("UP")
    else:
        return
    assert netcompare.compare_attachment(att, state) != []


def test_difference_says_what_was_expected_and_found():
    att = hostnet_pb2.NetworkAttachment(network="vmnet", nic="eth1", bridged=True, mtu=9000,
                                        ipv4={"method": "static", "address": "192.0.2.20", "prefixlen": 24})
    state = carrying(att, extra_addresses=[], shuffle=0, link_order=0)
    {l.name: l for l in state.links}["vmnet"].mtu = 1500
    findings = netcompare.compare_attachment(att, state)
    assert netcompare.Finding("vmnet mtu", "9000", "1500") in findings


def test_netmask_and_prefix_are_the_same_prefix():
    assert netcompare.prefixlen("255.255.255.0") == netcompare.prefixlen("24") == 24
    assert netcompare.bond_mode("active-backup") == netcompare.bond_mode("1") == 1
    assert netcompare.flag("0") is netcompare.flag("false") is netcompare.flag("off") is False
