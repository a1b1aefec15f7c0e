"""The lab's wiring: a switch namespace with a bridge, host namespaces with veth NICs.

Nothing here touches the machine's own namespace: veth pairs are created
inside the switch namespace with their peer placed straight into the host's.
A namespace is known by its name and its inode (`add` returns it): the lab
records both, and `remove` given the inode leaves alone a namespace that is
not the one the lab made, whatever its name.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

from pyroute2 import NetNS, netns

from . import processes

SWITCH_BRIDGE = "switch0"
LAB_NETWORK = ipaddress.ip_network("192.0.2.0/24")


def host_address(index: int) -> str:
    """host1 → 192.0.2.11, host2 → 192.0.2.12 …"""
    return str(LAB_NETWORK.network_address + 10 + index)


def exists(name: str) -> bool:
    return name in netns.listnetns()


def inode(name: str) -> int | None:
    """The namespace's identity (its nsfs inode), None when no namespace has that name."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except FileNotFoundError:
        return None


def add(name: str) -> int:
    """`ip netns add`, not pyroute2's netns.create: that gives its helper 2 s, and the kernel makes a new
    namespace wait while it tears others down (3 s seen here when tests remove theirs).
    Fails when the name is taken; returns the new namespace's inode."""
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"ip netns add {name}: {done.stderr.strip()}")
    made = inode(name)
    assert made is not None
    return made


def create_switch(name: str) -> int:
    made = add(name)
    wire_switch(name)
    return made


def wire_switch(name: str) -> None:
    with NetNS(name) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        ns.link("add", ifname=SWITCH_BRIDGE, kind="bridge", br_stp_state=0, br_forward_delay=0)
        ns.link("set", index=ns.link_lookup(ifname=SWITCH_BRIDGE)[0], state="up")


def create_host(switch: str, name: str, port_prefix: str, address: str | None, nics: int = 1) -> int:
    """A host namespace whose NICs eth0…ethK-1 are veths plugged into the switch bridge."""
    made = add(name)
    wire_host(switch, name, port_prefix, address, nics)
    return made


def wire_host(switch: str, name: str, port_prefix: str, address: str | None, nics: int = 1) -> None:
    with NetNS(switch) as sw:
        bridge = sw.link_lookup(ifname=SWITCH_BRIDGE)[0]
        for i in range(nics):
            port = f"{port_prefix}e{i}"
            sw.link("add", ifname=port, kind="veth", peer={"ifname": f"eth{i}", "net_ns_fd": name})
            sw.link("set", index=sw.link_lookup(ifname=port)[0], master=bridge, state="up")
    with NetNS(name) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        for i in range(nics):
            ns.link("set", index=ns.link_lookup(ifname=f"eth{i}")[0], state="up")
        if address:
            net = LAB_NETWORK
            ns.addr("add", index=ns.link_lookup(ifname="eth0")[0], address=address, prefixlen=net.prefixlen,
                    broadcast=str(net.broadcast_address))


def pids_in(name: str) -> list[int]:
    """Processes whose network namespace is `name` (qemu or dnsmasq can outlive their parent)."""
    try:
        target = os.stat(f"/run/netns/{name}")
    except FileNotFoundError:
        return []
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            st = os.stat(proc / "ns" / "net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(proc.name))
    return found


def remove(name: str, *, made: int | None = None, grace_s: float = 3.0) -> bool:
    """Stops whatever runs inside, waits until it has exited, then deletes the namespace (its devices go
    with it). With `made` (the inode `add` returned), a namespace of that name that is not the one made
    is left alone. True when it was removed."""
    current = inode(name)
    if current is None or (made is not None and current != made):
        return False
    for _ in range(5):   # what a dying process starts in there (a libvirtd's QEMU) is stopped in the next round
        if not (pids := pids_in(name)):
            break
        processes.stop_all(pids, grace_s=grace_s)
    netns.remove(name)
    return True
