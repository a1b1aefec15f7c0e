"""Seeds 000–002 on the real kernel: what each macvtap delivery mode lets two guests on one host NIC do.

The host is a lab host (its eth0 a veth whose peer is a port of the lab switch's
bridge); each guest is a macvlan on that eth0 moved into a namespace of its own
(macvtap is macvlan with a tap for QEMU: same modes, same forwarding). Guests
ping each other; hairpin mode on the switch port stands for a VEPA-capable switch.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from manager.lab import namespaces as lab_ns

from .reachability import probe

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

GUEST_NET = "10.66.0.{}/24"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Wiring:
    switch: str
    host: str
    port: str        # the switch port facing the host's eth0


@pytest.fixture
def wiring() -> Iterator[Wiring]:
    tag = uuid.uuid4().hex[:4]
    w = Wiring(switch=f"vft{tag}-switch", host=f"vft{tag}-host1", port=f"vft{tag}h1e0")
    try:
        lab_ns.create_switch(w.switch)
        lab_ns.create_host(w.switch, w.host, f"vft{tag}h1", address=None, nics=1)
        if sh("ip", "-n", w.host, "link", "add", "link", "eth0", "name", "probe", "type", "macvlan",
              check=False).returncode != 0:
            pytest.skip("this kernel has no macvlan")
        sh("ip", "-n", w.host, "link", "del", "probe")
        yield w
    finally:
        for name in (w.host, w.switch):
            lab_ns.remove(name)


def add_guest(netns_factory, w: Wiring, number: int, mode: str):
    """A guest's direct vNIC: macvlan on the host's eth0 in `mode`, inside the guest's own namespace."""
    guest = netns_factory()
    dev = f"g{number}"
    sh("ip", "-n", w.host, "link", "add", "link", "eth0", "name", dev, "type", "macvlan", "mode", mode)
    sh("ip", "-n", w.host, "link", "set", dev, "netns", guest.name)
    guest.ip("addr", "add", GUEST_NET.format(number), "dev", dev)
    guest.ip("link", "set", dev, "up")
    return guest


def hairpin(w: Wiring, on: bool) -> None:
    sh("bridge", "-n", w.switch, "link", "set", "dev", w.port, "hairpin", "on" if on else "off")


def reaches(guest, number: int) -> bool:
    """A TCP connect from inside the guest: a refusal (RST) proves the peer got it; silence proves nothing came.

    Each ask starts with an empty ARP cache: a FAILED entry left by an earlier ask
    (before the switch changed) would drop the first packets of this one.
    """
    sh("ip", "-n", guest.name, "neigh", "flush", "all")
    return probe(guest.name, GUEST_NET.format(number).split("/")[0])


def host_mode(guest, dev: str) -> str:
    """The mode as the kernel reports the guest's device (ip -d link)."""
    link = json.loads(sh("ip", "-n", guest.name, "-d", "-j", "link", "show", dev).stdout)[0]
    return link["linkinfo"]["info_data"]["mode"]


def test_bridge_mode_guests_reach_each_other_on_the_host(wiring, netns_factory):
    g1 = add_guest(netns_factory, wiring, 1, "bridge")
    g2 = add_guest(netns_factory, wiring, 2, "bridge")
    assert host_mode(g1, "g1") == host_mode(g2, "g2") == "bridge"
    assert reaches(g1, 2) and reaches(g2, 1)


def test_private_mode_guests_do_not_reach_each_other_even_through_a_hairpin_switch(wiring, netns_factory):
    g1 = add_guest(netns_factory, wiring, 1, "private")
    add_guest(netns_factory, wiring, 2, "private")
    assert not reaches(g1, 2)
    hairpin(wiring, True)
    assert not reaches(g1, 2)


def test_vepa_mode_guests_reach_each_other_only_through_a_hairpin_switch(wiring, netns_factory):
    g1 = add_guest(netns_factory, wiring, 1, "vepa")
    g2 = add_guest(netns_factory, wiring, 2, "vepa")
    assert host_mode(g1, "g1") == "vepa"
    assert not reaches(g1, 2)
    hairpin(wiring, True)
    assert reaches(g1, 2) and reaches(g2, 1)


def test_bridge_mode_to_a_vepa_guest_needs_the_hairpin_switch(wiring, netns_factory):
    g1 = add_guest(netns_factory, wiring, 1, "bridge")
    add_guest(netns_factory, wiring, 2, "vepa")
    assert not reaches(g1, 2)
    hairpin(wiring, True)
    assert reaches(g1, 2)


def test_passthrough_gives_the_host_nic_to_one_guest_only(wiring, netns_factory):
    add_guest(netns_factory, wiring, 1, "passthru")
    second = sh("ip", "-n", wiring.host, "link", "add", "link", "eth0", "name", "g2", "type", "macvlan",
                "mode", "passthru", check=False)
    assert second.returncode != 0
    links = {l["ifname"] for l in json.loads(sh("ip", "-n", wiring.host, "-j", "link").stdout)}
    assert "g2" not in links
