"""Logical network definitions and host attachments as admins type them, checked (pure).

Every value goes through the rule the agent applies to it (virtfleet.rules), so
the manager refuses at its door exactly what a host would refuse, naming the
field of the admin's request; what only a host can judge (its NICs, its kernel)
is left to the agent.
"""
from __future__ import annotations

from dataclasses import dataclass

from virtfleet import rules
from virtfleet.v1 import fleet_pb2, hostnet_pb2



@dataclass(frozen=True)
class NetworkDefinition:
    """A logical network's own settings, canonical: untagged is None, the default MTU filled in."""

    name: str
    vlan: int | None
    mtu: int
    description: str = ""


def network_definition(name: str, vlan: int, mtu: int, field: str = "network",
                       description: str = "") -> NetworkDefinition:
    """A VM network's name becomes its bridge's name on every host: the kernel's rule for it applies.
    The description is bounded so that listing every network stays far below a gRPC message's size."""
    return NetworkDefinition(rules.device_name(name, f"{field}.name", "network"),
                             rules.vlan_id(vlan, f"{field}.vlan"), rules.mtu(mtu, f"{field}.mtu"),
                             rules.description(description, f"{field}.description"))


def setup_limits(attach: int, detach: int, bonds: int, remove_bonds: int, connectivity_timeout_s: int) -> None:
    """The sizes of one host setup request: its lists and its wait (virtfleet.rules' limits)."""
    for count, field in ((attach, "attach"), (detach, "detach"), (bonds, "bonds"), (remove_bonds, "remove_bonds")):
        rules.count_within(count, rules.MAX_ITEMS_PER_REQUEST, field, "items in one request")
    rules.timeout_s(connectivity_timeout_s, "connectivity_timeout_s")


def ipv4_config(cfg: hostnet_pb2.Ipv4Config, field: str) -> hostnet_pb2.Ipv4Config:
    """The canonical form, by the rule the agent applies (virtfleet.rules.ipv4_config)."""
    v = rules.ipv4_config(cfg.method, cfg.address, cfg.prefixlen, cfg.gateway, field)
    return hostnet_pb2.Ipv4Config(method=v.method, address=v.address, prefixlen=v.prefixlen, gateway=v.gateway)


def host_attachment(att: fleet_pb2.HostAttachment, field: str) -> fleet_pb2.HostAttachment:
    """One network on one host's NIC or bond: the canonical attachment, or the field that is wrong."""
    nic = rules.device_name(att.nic, f"{field}.nic", "NIC or bond")
    ipv4 = ipv4_config(att.ipv4, f"{field}.ipv4")
    rules.default_route(att.default_route, rules.Ipv4Values(ipv4.method, ipv4.address, ipv4.prefixlen, ipv4.gateway),
                        f"{field}.default_route")
    return fleet_pb2.HostAttachment(network=att.network, nic=nic, ipv4=ipv4, default_route=att.default_route)


def check_bond(b: hostnet_pb2.Bond, field: str) -> None:
    """A bond's name and its slaves' names are kernel device names; mode and options are the host's to judge."""
    rules.device_name(b.name, f"{field}.name", "bond")
    rules.count_within(len(b.slaves), rules.MAX_BOND_SLAVES, f"{field}.slaves", "slaves in one bond")
    for j, slave in enumerate(b.slaves):
        rules.device_name(slave, f"{field}.slaves[{j}]", "slave NIC")
