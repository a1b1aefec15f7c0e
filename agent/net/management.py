"""The management network: a bridge that takes over a NIC and its IP identity.

This is the first thing done to a new host (seed 004): `ovirtmgmt` is
created with the NIC's MAC and MTU and STP off, the NIC becomes its port, and
the NIC's IPv4 addresses and routes move onto the bridge, so the host keeps
its address and default route while VMs can later join the same segment.

Shaped like nmstate's apply: validate, read, complete the desired state from
the current one, plan, apply in a journaled transaction, verify.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, replace

from pyroute2 import IPRoute

from agent.net import transaction
from agent.net.errors import FailedPrecondition, InvalidArgument
from agent.net.operations import (
    AddAddress,
    AddBridge,
    DeleteAddress,
    DeleteLink,
    ReplaceRoute,
    SetMac,
    SetMaster,
    SetMtu,
    SetStp,
    SetUp,
)
from agent.net.state import read_state
from agent.net.transaction import Step, recover_from_journal
from virtfleet.v1 import netstate_pb2

__all__ = ["ManagementResult", "ManagementNetwork", "setup_management_network", "recover_from_journal", "desired", "plan"]

IFNAMSIZ = 16
# Kinds that can carry a host's way out: NICs, lab veths, and what oVirt stacks under a bridge.
_UPLINK_KINDS = {"", "veth", "bond", "vlan", "team"}


@dataclass(frozen=True)
class ManagementResult:
    changed: bool
    steps: list[str]
    state: netstate_pb2.NetworkState


@dataclass(frozen=True)
class ManagementNetwork:
    """The desired end state, completed from what the host has now."""

    nic: str
    bridge: str
    mac: str
    mtu: int
    addresses: tuple[AddAddress, ...]  # the NIC's IPv4 addresses, as they will sit on the bridge
    routes: tuple[ReplaceRoute, ...]  # routes through the NIC, as they will go through the bridge


def setup_management_network(
    ipr: IPRoute,
    nic: str,
    bridge: str = "ovirtmgmt",
    *,
    dry_run: bool = False,
    journal_path: pathlib.Path | None = None,
    fail_at: int | None = None,
    crash_at: int | None = None,
) -> ManagementResult:
    """Make `bridge` the host's management network on top of `nic`.

    Idempotent: a host that already has it gets no steps and `changed=False`.
    A dry run returns the steps without touching the kernel (and `changed=False`).
    `fail_at`/`crash_at` are fault-injection seams for tests (see transaction).
    """
    check_name("nic", nic)
    check_name("bridge", bridge)
    if nic == bridge:
        raise InvalidArgument("bridge", "must differ from the NIC it is built on")
    current = read_state(ipr)
    target = desired(current, nic, bridge)
    steps = plan(current, target)
    if dry_run or not steps:
        return ManagementResult(changed=False, steps=[s.describe() for s in steps], state=current)
    transaction.execute(
        ipr,
        steps,
        touched=[nic, bridge],
        verify=lambda: verify(read_state(ipr), target),
        journal_path=journal_path,
        fail_at=fail_at,
        crash_at=crash_at,
    )
    return ManagementResult(changed=True, steps=[s.describe() for s in steps], state=read_state(ipr))


def check_name(field: str, name: str) -> None:
    """The kernel's own rule (dev_valid_name), checked here to name the bad field."""
    if not name:
        raise InvalidArgument(field, "must not be empty")
    if len(name.encode()) >= IFNAMSIZ:
        raise InvalidArgument(field, f"{name!r} is longer than {IFNAMSIZ - 1} bytes")
    if name in (".", ".."):
        raise InvalidArgument(field, f"{name!r} is not a link name")
    if any(c == "/" or c == ":" or c.isspace() for c in name):
        raise InvalidArgument(field, f"{name!r} contains '/', ':' or whitespace")


def desired(current: netstate_pb2.NetworkState, nic: str, bridge: str) -> ManagementNetwork:
    """Check the host allows it and complete the request: MAC, MTU, what moves."""
    links = {link.name: link for link in current.links}
    uplink = links.get(nic)
    if uplink is None:
        raise InvalidArgument("nic", f"no link named {nic!r} on this host")
    if uplink.kind not in _UPLINK_KINDS or uplink.link_type != "ether":
        raise InvalidArgument("nic", f"{nic} is a {uplink.kind or uplink.link_type} device, not a NIC")
    if uplink.master and uplink.master != bridge:
        raise FailedPrecondition(f"{nic} is already a port of {uplink.master}")
    existing = links.get(bridge)
    if existing is not None and existing.kind != "bridge":
        raise FailedPrecondition(f"{bridge} exists and is a {existing.kind or existing.link_type} device, not a bridge")
    addresses = tuple(
        replace(_address_op(nic, a), link=bridge, label=_relabel(a.label, nic, bridge))
        for a in uplink.addresses
        if a.family == "inet"
    )
    routes = tuple(replace(_route_op(r), device=bridge) for r in _movable_routes(current, nic))
    return ManagementNetwork(nic, bridge, uplink.mac, uplink.mtu, addresses, routes)


def plan(current: netstate_pb2.NetworkState, target: ManagementNetwork) -> list[Step]:
    """The steps from `current` to `target`, each with its undo; empty when already there.

    Order keeps the host reachable as long as possible: the bridge is up and
    holds the addresses before routes move, and the NIC loses its addresses
    last (secondaries first, so the kernel does not drop them with the primary).
    """
    links = {link.name: link for link in current.links}
    uplink, existing = links[target.nic], links.get(target.bridge)
    nic, bridge = target.nic, target.bridge
    steps = []
    if existing is None:
        steps.append(Step(AddBridge(bridge, target.mac, target.mtu, stp=False), DeleteLink(bridge)))
    else:
        if existing.bridge.stp_enabled:
            steps.append(Step(SetStp(bridge, False), SetStp(bridge, True)))
        if existing.mac != target.mac:
            steps.append(Step(SetMac(bridge, target.mac), SetMac(bridge, existing.mac)))
        if existing.mtu != target.mtu:
            steps.append(Step(SetMtu(bridge, target.mtu), SetMtu(bridge, existing.mtu)))
    if uplink.master != bridge:
        steps.append(Step(SetMaster(nic, bridge), SetMaster(nic, uplink.master)))
    if "UP" not in uplink.flags:
        steps.append(Step(SetUp(nic, True), SetUp(nic, False)))
    if existing is None or "UP" not in existing.flags:
        steps.append(Step(SetUp(bridge, True), SetUp(bridge, False)))
    on_bridge = {(a.address, a.prefixlen) for a in existing.addresses} if existing else set()
    for address in target.addresses:
        if (address.address, address.prefixlen) not in on_bridge:
            steps.append(Step(address, DeleteAddress(bridge, address.address, address.prefixlen)))
    for route in _movable_routes(current, nic):
        steps.append(Step(replace(_route_op(route), device=bridge), _route_op(route)))
    for address in reversed([a for a in uplink.addresses if a.family == "inet"]):
        steps.append(Step(DeleteAddress(nic, address.address, address.prefixlen), _address_op(nic, address)))
    return steps


def verify(current: netstate_pb2.NetworkState, target: ManagementNetwork) -> list[str]:
    """Desired ⊆ current, as lines an admin can read; empty when all is there."""
    links = {link.name: link for link in current.links}
    bridge, uplink = links.get(target.bridge), links.get(target.nic)
    if bridge is None or bridge.kind != "bridge":
        return [f"{target.bridge}: no such bridge"]
    if uplink is None:
        return [f"{target.nic}: link disappeared"]
    wanted = {
        f"{target.bridge} mac": (target.mac, bridge.mac),
        f"{target.bridge} mtu": (target.mtu, bridge.mtu),
        f"{target.bridge} stp": (False, bridge.bridge.stp_enabled),
        f"{target.bridge} up": (True, "UP" in bridge.flags),
        f"{target.nic} master": (target.bridge, uplink.master),
        f"{target.nic} up": (True, "UP" in uplink.flags),
        f"{target.nic} IPv4 addresses": ([], [a.address for a in uplink.addresses if a.family == "inet"]),
    }
    lines = [f"{what}: expected {want!r} got {got!r}" for what, (want, got) in wanted.items() if want != got]
    present = {(a.address, a.prefixlen, a.broadcast) for a in bridge.addresses}
    for address in target.addresses:
        if (address.address, address.prefixlen, address.broadcast) not in present:
            lines.append(f"{target.bridge}: missing address {address.address}/{address.prefixlen}")
    routes = {(r.destination, r.gateway, r.metric) for r in current.routes if r.device == target.bridge}
    for route in target.routes:
        if (route.destination, route.gateway, route.metric) not in routes:
            lines.append(f"{target.bridge}: missing route {route.describe()}")
    return lines


def _movable_routes(state: netstate_pb2.NetworkState, nic: str) -> list[netstate_pb2.Route]:
    """IPv4 routes the admin put on the NIC; the kernel's own prefix routes follow the addresses."""
    return [r for r in state.routes if r.device == nic and r.family == "inet" and r.protocol != "kernel"]


def _address_op(link: str, address: netstate_pb2.Address) -> AddAddress:
    return AddAddress(
        link=link,
        address=address.address,
        prefixlen=address.prefixlen,
        broadcast=address.broadcast,
        label=address.label,
        noprefixroute="noprefixroute" in address.flags,
        valid_lft=address.valid_lft,
        preferred_lft=address.preferred_lft,
    )


def _route_op(route: netstate_pb2.Route) -> ReplaceRoute:
    return ReplaceRoute(
        destination=route.destination,
        device=route.device,
        gateway=route.gateway,
        metric=route.metric,
        scope=route.scope,
        protocol=route.protocol,
        source=route.source,
        family=route.family,
    )


def _relabel(label: str, nic: str, bridge: str) -> str:
    """`eth0:1` becomes `ovirtmgmt:1` when that still fits a link name, else the bridge's name."""
    if not label.startswith(nic):
        return label
    moved = bridge + label[len(nic) :]
    return moved if len(moved.encode()) < IFNAMSIZ else bridge
