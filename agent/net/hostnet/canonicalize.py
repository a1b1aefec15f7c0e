"""Requests made whole before anything judges them: merged onto the running configuration, or
completed from the host's current state.

A setupNetworks request names only what changes; `merge` gives the
configuration after the change, which validation, planning and verification
all judge. SetupManagementNetwork asks for less still — "bridge B on NIC X" —
and `management` turns that into an ordinary setupNetworks request completed
from what X has now: a bridged network B on X with X's MTU, its IPv4 address
and gateway and its default route as the desired state. What a management
network needs beyond a plain network (B takes X's MAC and every address and
route X has, each as it is) travels as the bridge's takeover (see
model.BridgeSpec). The result then goes through the one pipeline —
validate → plan → journal → apply → verify — and becomes part of the saved
configuration like any other network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from virtfleet import rules
from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.v1 import hostnet_pb2, netstate_pb2

# Kinds that can carry a host's way out and that setupNetworks can name: NICs, lab veths, its bonds, VLANs.
UPLINK_KINDS = frozenset({"", "veth", "bond", "vlan"})
_ATTACHMENT_FIELD = re.compile(r"networks\[0\]\.(\w+)")


def merge(running: hostnet_pb2.HostNetworkConfig, request: hostnet_pb2.SetupNetworksRequest) -> hostnet_pb2.HostNetworkConfig:
    """The configuration after the request: unchanged entries first, then the request's in its order.

    Keeping the request's order makes rule errors name the later of two
    clashing entries — the one the admin just added.
    """
    changed = {n.network for n in request.networks} | set(request.remove_networks)
    changed_bonds = {b.name for b in request.bonds} | set(request.remove_bonds)
    return hostnet_pb2.HostNetworkConfig(
        networks=[n for n in running.networks if n.network not in changed] + list(request.networks),
        bonds=[b for b in running.bonds if b.name not in changed_bonds] + list(request.bonds),
    )


@dataclass(frozen=True)
class Management:
    """SetupManagementNetwork as setupNetworks: one bridged network whose bridge takes over its NIC."""

    request: hostnet_pb2.SetupNetworksRequest
    bridge: str


def management(current: netstate_pb2.NetworkState, nic: str, bridge: str, *, dry_run: bool = False) -> Management:
    """Check the host allows a management bridge on `nic` and complete the request from `current`.

    Completing from where the NIC's identity sits now — on the NIC, or on the
    bridge once the NIC is its port — makes a second call ask for exactly what
    the first one built, so it plans no steps.
    """
    rules.device_name(nic, "nic", "NIC")
    rules.device_name(bridge, "bridge", "bridge")
    if nic == bridge:
        raise InvalidArgument("bridge", "must differ from the NIC it is built on")
    links = {link.name: link for link in current.links}
    uplink = links.get(nic)
    if uplink is None:
        raise InvalidArgument("nic", f"no link named {nic!r} on this host")
    if uplink.kind not in UPLINK_KINDS or uplink.link_type != "ether":
        raise InvalidArgument("nic", f"{nic} is a {uplink.kind or uplink.link_type} device, not a NIC")
    if uplink.master and uplink.master != bridge:
        raise FailedPrecondition(f"{nic} is already a port of {uplink.master}")
    existing = links.get(bridge)
    if existing is not None and existing.kind != "bridge":
        raise FailedPrecondition(f"{bridge} exists and is a {existing.kind or existing.link_type} device, not a bridge")
    # Where the NIC's identity sits now: on the NIC, or on the bridge once the NIC is its port and bare.
    bare = not any(a.family == "inet" for a in uplink.addresses)
    holder = existing if existing is not None and uplink.master == bridge and bare else uplink
    base, vlan = _carrier(uplink)
    ipv4, default_route = _ipv4(holder, current.routes)
    attachment = hostnet_pb2.NetworkAttachment(network=bridge, nic=base, vlan=vlan, mtu=uplink.mtu, bridged=True,
                                               ipv4=ipv4, default_route=default_route)
    return Management(hostnet_pb2.SetupNetworksRequest(networks=[attachment], dry_run=dry_run), bridge)


def management_error(error: InvalidArgument) -> InvalidArgument:
    """A refusal of the completed request, named by the SetupManagementNetwork field it comes from.

    The network's name is the bridge; everything else was read off the NIC.
    """
    match = _ATTACHMENT_FIELD.match(error.field)
    if match is None:
        return error
    return InvalidArgument("bridge" if match.group(1) == "network" else "nic", error.description)


def _carrier(uplink: netstate_pb2.Link) -> tuple[str, int]:
    """The NIC or bond and VLAN id setupNetworks speaks of: `eth0.10` is VLAN 10 on eth0."""
    if uplink.kind != "vlan":
        return uplink.name, 0
    if uplink.name != f"{uplink.parent}.{uplink.vlan_id}":
        raise InvalidArgument("nic", f"VLAN device {uplink.name} is not named {uplink.parent}.{uplink.vlan_id}, "
                                     "as setupNetworks names VLAN devices")
    return uplink.parent, uplink.vlan_id


def _ipv4(holder: netstate_pb2.Link, routes: list[netstate_pb2.Route]) -> tuple[hostnet_pb2.Ipv4Config, bool]:
    """The address that reaches the default gateway (else the primary), the gateway, and whether it is the default route.

    An address with a lifetime came from a DHCP lease: it is recorded as DHCP,
    not pinned as a static one.
    """
    defaults = sorted((r for r in routes if r.family == "inet" and r.destination == "default"
                       and r.device == holder.name and r.gateway), key=lambda r: r.metric)
    gateway = defaults[0].gateway if defaults else ""
    addresses = [a for a in holder.addresses if a.family == "inet"]
    reaching = [a for a in addresses if gateway and ipaddress.IPv4Address(gateway) in _network(a)]
    address = (reaching or addresses or [None])[0]
    if address is None:
        return hostnet_pb2.Ipv4Config(method="none", gateway=gateway), bool(gateway)
    if address.valid_lft >= 0:
        return hostnet_pb2.Ipv4Config(method="dhcp", gateway=gateway), bool(gateway)
    if not reaching:
        gateway = ""  # not on this address's network: the route still moves with the bridge, as it is
    return (hostnet_pb2.Ipv4Config(method="static", address=address.address, prefixlen=address.prefixlen,
                                   gateway=gateway), bool(gateway))


def _network(address: netstate_pb2.Address) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{address.address}/{address.prefixlen}", strict=False)
