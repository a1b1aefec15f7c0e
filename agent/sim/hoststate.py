"""Generated host states shaped like a real agent's: NICs, bridges, vnetN taps, addresses, routes."""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.v1 import netstate_pb2

UP = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
MGMT_NET = ipaddress.IPv4Network("198.18.0.0/15")   # the benchmarking range: never routed anywhere


@dataclass(frozen=True)
class SimVnic:
    vm: str
    name: str
    mac: str          # the guest's MAC
    device: str       # vnetN on the host
    network: str


@dataclass(frozen=True)
class SimHostSpec:
    name: str
    address: str
    vnics: list[SimVnic]


def host_name(i: int) -> str:
    return f"sim{i:05d}"


def host_address(i: int) -> str:
    return str(MGMT_NET.network_address + 256 + i)


def guest_mac(host: int, vm: int, nic: int) -> str:
    """Unique per (host, vm, nic) for up to 65,536 hosts × 256 VMs × 256 NICs, under the 52:54 prefix."""
    value = (host << 16) | (vm << 8) | nic
    return "52:54:" + ":".join(f"{(value >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def spec(i: int, vms: int, nics: int, network: str = "vmnet") -> SimHostSpec:
    vnics = []
    for vm in range(vms):
        for nic in range(nics):
            vnics.append(SimVnic(f"{host_name(i)}-vm{vm:03d}", f"nic{nic + 1}", guest_mac(i, vm, nic),
                                 f"vnet{vm * nics + nic}", network))
    return SimHostSpec(host_name(i), host_address(i), vnics)


def _mac(i: int, n: int) -> str:
    return f"52:54:01:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}:{n:02x}"


def _tap_mac(guest: str) -> str:
    return "fe" + guest[2:]


def state(host: SimHostSpec, index: int) -> netstate_pb2.NetworkState:
    """lo, eth0 under ovirtmgmt (with the host's address), eth1 under the VM network, one tap per vNIC."""
    taken_at = Timestamp()
    taken_at.FromNanoseconds(time.time_ns())
    links = [
        netstate_pb2.Link(index=1, name="lo", mtu=65536, flags=["LOOPBACK", "UP", "LOWER_UP"], link_type="loopback",
                          mac="00:00:00:00:00:00", oper_state="UNKNOWN", qdisc="noqueue", group="default",
                          addresses=[netstate_pb2.Address(family="inet", address="127.0.0.1", prefixlen=8,
                                                          scope="host", label="lo", valid_lft=-1, preferred_lft=-1)]),
        _ether(2, "eth0", _mac(index, 1), master="ovirtmgmt", kind="veth"),
        _ether(3, "eth1", _mac(index, 2), master="vmnet", kind="veth"),
        _bridge(4, "ovirtmgmt", _mac(index, 1), ["eth0"],
                [netstate_pb2.Address(family="inet", address=host.address, prefixlen=15, scope="global",
                                      label="ovirtmgmt", broadcast="198.19.255.255", valid_lft=-1,
                                      preferred_lft=-1)]),
        _bridge(5, "vmnet", _mac(index, 2), ["eth1", *sorted(v.device for v in host.vnics)], []),
    ]
    for n, vnic in enumerate(host.vnics):
        links.append(_ether(6 + n, vnic.device, _tap_mac(vnic.mac), master=vnic.network, kind="tun",
                            qdisc="fq_codel", txqlen=1000))
    routes = [
        netstate_pb2.Route(family="inet", destination="198.18.0.0/15", device="ovirtmgmt", scope="link",
                           protocol="kernel", source=host.address),
    ]
    return netstate_pb2.NetworkState(hostname=host.name, links=links, routes=routes, taken_at=taken_at)


def _ether(index: int, name: str, mac: str, *, master: str = "", kind: str = "", qdisc: str = "noqueue",
           txqlen: int = 1000) -> netstate_pb2.Link:
    return netstate_pb2.Link(index=index, name=name, kind=kind, mac=mac, broadcast="ff:ff:ff:ff:ff:ff", mtu=1500,
                             flags=UP, master=master, oper_state="UP", qdisc=qdisc, txqlen=txqlen,
                             link_type="ether", group="default", link_netnsid=-1)


def _bridge(index: int, name: str, mac: str, ports: list[str], addresses) -> netstate_pb2.Link:
    link = _ether(index, name, mac, qdisc="noqueue", txqlen=0)
    link.kind = "bridge"
    link.addresses.extend(addresses)
    link.bridge.bridge_id = "8000." + mac.replace(":", "")
    link.bridge.ports.extend(ports)
    return link
