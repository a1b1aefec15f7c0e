"""The ordered kernel steps from the running configuration to the requested one.

Pure. Two phases, each ordered so the host keeps working as long as it can:

1. take away what the old configuration made and the new one does not:
   default route, addresses, bridge ports, bridges, VLANs, bonds — top down —
   then give released NICs back their MTU and up/down state from before;
2. build what the new configuration needs and the kernel lacks: bonds,
   MTUs (decreases top down, increases bottom up), VLANs, bridges and their
   ports, addresses (an address moving from a NIC onto its new bridge is
   added on the bridge before it leaves the NIC), default route.

A bridge that takes over its port (the management network, see
model.BridgeSpec) also gets the port's MAC and STP off if it exists already,
and every IPv4 address and route of the port moves onto it as it is.

Removal only undoes what a configuration made (it is driven by the old
configuration); building is driven by the kernel's state, so applying a
saved configuration to a freshly booted host builds all of it, and applying it
to a host that already has it does nothing.

Every step carries its undo, captured from the current state, so the
transaction can restore the host exactly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from agent.net.apply.operations import (
    AddAddress,
    AddBond,
    AddBridge,
    AddVlan,
    DeleteAddress,
    DeleteLink,
    DeleteRoute,
    ReplaceRoute,
    SetMac,
    SetMaster,
    SetMtu,
    SetStp,
    SetUp,
    Step,
)
from agent.net.hostnet.model import BondSpec, BridgeSpec, Devices
from virtfleet import rules
from virtfleet.v1 import netstate_pb2

Originals = dict[str, dict[str, object]]  # NIC → {"mtu": int, "up": bool} before this agent took it


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    originals: Originals = field(default_factory=dict)  # to save with the configuration

    def describe(self) -> list[str]:
        return [s.describe() for s in self.steps]


def plan(current: netstate_pb2.NetworkState, old: Devices, new: Devices, originals: Originals) -> Plan:
    builder = _Builder(current, originals)
    builder.remove(old, new)
    builder.build(new)
    result = builder.result
    result.touched |= set(old.bridges) | set(new.bridges) | set(old.vlans) | set(new.vlans)
    result.touched |= set(old.bonds) | set(new.bonds) | set(old.nics) | set(new.nics)
    result.touched |= set(old.base_mtu) | set(new.base_mtu)
    return result


class _Builder:
    def __init__(self, current: netstate_pb2.NetworkState, originals: Originals) -> None:
        self.current = current
        self.links = {link.name: link for link in current.links}
        self.result = Plan(originals={k: dict(v) for k, v in originals.items()})
        self.gone: set[str] = set()  # links this plan deletes
        self.master: dict[str, str] = {name: link.master for name, link in self.links.items()}
        self.mtu: dict[str, int] = {name: link.mtu for name, link in self.links.items()}

    def add(self, do, undo) -> None:
        self.result.steps.append(Step(do, undo))

    def exists(self, name: str) -> bool:
        return name in self.links and name not in self.gone

    def is_up(self, name: str) -> bool:
        return self.exists(name) and "UP" in self.links[name].flags

    # -- phase 1: take away ----------------------------------------------------------------

    def remove(self, old: Devices, new: Devices) -> None:
        if old.default_route and new.default_route != old.default_route and new.default_route is None:
            self._delete_default_route(*old.default_route)
        for top, addresses in old.addresses.items():
            for address, prefix in sorted(addresses - new.addresses.get(top, frozenset())):
                self._delete_address(top, address, prefix)
        for name, bridge in sorted(old.bridges.items()):
            wanted = new.bridges.get(name)
            if (wanted is None or wanted.port != bridge.port) and self.master.get(bridge.port) == name:
                self._set_master(bridge.port, "")
            if wanted is None:
                self._delete_link(name)
        for name, vlan in sorted(old.vlans.items()):
            wanted = new.vlans.get(name)
            if wanted is None or (wanted.parent, wanted.vlan_id) != (vlan.parent, vlan.vlan_id):
                if self.master.get(name):
                    self._set_master(name, "")
                self._delete_link(name)
        for name, bond in sorted(old.bonds.items()):
            wanted = new.bonds.get(name)
            keep = wanted is not None and (wanted.mode, wanted.options) == (bond.mode, bond.options)
            for slave in bond.slaves:
                if (not keep or slave not in wanted.slaves) and self.master.get(slave) == name:  # type: ignore[union-attr]
                    self._set_master(slave, "")
            if not keep:
                self._delete_link(name)
        for nic in sorted(old.nics - new.nics):
            self._give_back(nic)

    def _delete_default_route(self, gateway: str, device: str) -> None:
        for route in self.current.routes:
            if route.family == "inet" and route.destination == "default" and route.gateway == gateway and route.device == device:
                self.add(_delete_route_op(route), _route_op(route))

    def _delete_address(self, top: str, address: str, prefix: int) -> None:
        if not self.exists(top):
            return
        network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
        for route in self._admin_routes(top):  # would vanish with the address, beyond a rollback's reach
            if (route.gateway and ipaddress.IPv4Address(route.gateway) in network) or route.source == address:
                if not any(s.do == _delete_route_op(route) for s in self.result.steps):
                    self.add(_delete_route_op(route), _route_op(route))
        for a in self.links[top].addresses:
            if a.family == "inet" and a.address == address and a.prefixlen == prefix:
                self.add(DeleteAddress(top, address, prefix), _address_op(top, a))

    def _set_master(self, link: str, master: str) -> None:
        self.add(SetMaster(link, master), SetMaster(link, self.master.get(link, "")))
        self.master[link] = master

    def _delete_link(self, name: str) -> None:
        """Down first, so the undo of the delete brings it back down and the undo of `down` raises it."""
        if not self.exists(name):
            return
        link = self.links[name]
        if "UP" in link.flags:
            self.add(SetUp(name, False), SetUp(name, True))
        self.add(DeleteLink(name), self._recreate(link))
        self.gone.add(name)

    def _recreate(self, link: netstate_pb2.Link):
        if link.kind == "bridge":
            return AddBridge(link.name, link.mac, link.mtu, stp=link.bridge.stp_enabled)
        if link.kind == "vlan":
            return AddVlan(link.name, link.parent, link.vlan_id, link.mtu)
        if link.kind == "bond":
            return AddBond(link.name, 0)  # mode and options are not reported where bonding is missing
        raise ValueError(f"{link.name}: cannot recreate a {link.kind or 'plain'} device")

    def _give_back(self, nic: str) -> None:
        before = self.result.originals.pop(nic, None)
        if before is None or not self.exists(nic):
            return
        self._set_mtu(nic, int(before["mtu"]))  # type: ignore[call-overload]
        if bool(before["up"]) != self.is_up(nic):
            self.add(SetUp(nic, bool(before["up"])), SetUp(nic, self.is_up(nic)))

    def _set_mtu(self, name: str, mtu: int) -> None:
        if self.mtu.get(name) != mtu:
            self.add(SetMtu(name, mtu), SetMtu(name, self.mtu[name]))
            self.mtu[name] = mtu

    # -- phase 2: build ----------------------------------------------------------------------

    def build(self, new: Devices) -> None:
        for nic in sorted(new.nics):
            if nic not in self.result.originals and self.exists(nic):
                self.result.originals[nic] = {"mtu": self.links[nic].mtu, "up": self.is_up(nic)}
        for bond in sorted(new.bonds.values(), key=lambda b: b.name):
            self._build_bond(bond)
        takeovers = [b for b in sorted(new.bridges.values(), key=lambda b: b.name) if b.takeover]
        for bridge in takeovers:
            self._adopt_identity(bridge, new)
        self._mtus(new)
        for base in sorted(new.base_mtu):
            if not self.is_up(base) and base not in new.bonds:
                self.add(SetUp(base, True), SetUp(base, False))
        for vlan in sorted(new.vlans.values(), key=lambda v: v.name):
            if not self.exists(vlan.name):
                self.add(AddVlan(vlan.name, vlan.parent, vlan.vlan_id, vlan.mtu), DeleteLink(vlan.name))
                self.add(SetUp(vlan.name, True), SetUp(vlan.name, False))
            elif not self.is_up(vlan.name):
                self.add(SetUp(vlan.name, True), SetUp(vlan.name, False))
        moving: list[tuple[str, str]] = []  # (port, its new bridge)
        for bridge in sorted(new.bridges.values(), key=lambda b: b.name):
            if not self.exists(bridge.name):
                self.add(AddBridge(bridge.name, port_mac(self.links, bridge.port, new, self.gone), bridge.mtu, stp=False), DeleteLink(bridge.name))
                self.mtu[bridge.name] = bridge.mtu
            if self.master.get(bridge.port) != bridge.name:
                self._set_master(bridge.port, bridge.name)
                moving.append((bridge.port, bridge.name))
            if not self.is_up(bridge.name):
                self.add(SetUp(bridge.name, True), SetUp(bridge.name, False))
        taken = {b.port: b.name for b in takeovers if self.exists(b.port)}
        added: dict[str, set[tuple[str, int]]] = {}
        for port, bridge_name in taken.items():
            added[bridge_name] = self._take_addresses(port, bridge_name)
        for top, addresses in sorted(new.addresses.items()):
            have = {(a.address, a.prefixlen) for a in self.links[top].addresses} if self.exists(top) else set()
            for address, prefix in sorted(addresses - have - added.get(top, set())):
                self.add(AddAddress(top, address, prefix, broadcast=_broadcast(address, prefix)),
                         DeleteAddress(top, address, prefix))
        if new.default_route and not self._moves_with_its_port(*new.default_route, taken):
            self._default_route(*new.default_route)
        moving = [(port, name) for port, name in moving if port not in taken] + list(taken.items())
        for port, bridge_name in moving:  # a bridge port's addresses would be dead: they move to the bridge or go
            if self.exists(port):
                self._move_routes(port, bridge_name, new)
                for a in reversed([a for a in self.links[port].addresses if a.family == "inet"]):
                    self.add(DeleteAddress(port, a.address, a.prefixlen), _address_op(port, a))

    def _adopt_identity(self, bridge: BridgeSpec, new: Devices) -> None:
        """An existing bridge that takes over its port: STP off and the port's MAC, before anything else."""
        if not self.exists(bridge.name):
            return
        link = self.links[bridge.name]
        if link.bridge.stp_enabled:
            self.add(SetStp(bridge.name, False), SetStp(bridge.name, True))
        mac = port_mac(self.links, bridge.port, new, self.gone)
        if mac and link.mac != mac:
            self.add(SetMac(bridge.name, mac), SetMac(bridge.name, link.mac))

    def _take_addresses(self, port: str, bridge: str) -> set[tuple[str, int]]:
        """The port's IPv4 addresses onto the bridge, each as it is (label, lifetimes, flags), in the port's order."""
        have = {(a.address, a.prefixlen) for a in self.links[bridge].addresses} if self.exists(bridge) else set()
        taken = set()
        for a in self.links[port].addresses:
            if a.family == "inet" and (a.address, a.prefixlen) not in have:
                op = replace(_address_op(bridge, a), label=_relabel(a.label, port, bridge))
                self.add(op, DeleteAddress(bridge, a.address, a.prefixlen))
                taken.add((a.address, a.prefixlen))
        return taken

    def _moves_with_its_port(self, gateway: str, device: str, taken: dict[str, str]) -> bool:
        """A default route a taken-over port has already follows it onto the bridge, as it is."""
        return any(bridge == device and any(r.destination == "default" and r.gateway == gateway
                                            for r in self._admin_routes(port))
                   for port, bridge in taken.items())

    def _move_routes(self, port: str, bridge: str, new: Devices) -> None:
        """Routes through a new bridge port follow its addresses onto the bridge where they still reach.

        The rest are deleted as steps of their own, so a rollback puts them
        back after the port has its addresses again (the kernel would drop
        them silently with the addresses, and nothing would restore them).
        """
        networks = [ipaddress.IPv4Network(f"{a}/{p}", strict=False) for a, p in new.addresses.get(bridge, ())]
        takeover = new.bridges[bridge].takeover if bridge in new.bridges else False
        for route in self._admin_routes(port):
            if route.destination == "default" and route.metric == 0 and new.default_route and not takeover:
                continue  # the configured default route replaced it already
            reachable = takeover or not route.gateway or any(ipaddress.IPv4Address(route.gateway) in n for n in networks)
            if reachable:
                self.add(replace(_route_op(route), device=bridge), _route_op(route))
            else:
                self.add(_delete_route_op(route), _route_op(route))

    def _admin_routes(self, device: str) -> list[netstate_pb2.Route]:
        return [r for r in self.current.routes if r.device == device and r.family == "inet" and r.protocol != "kernel"]

    def _build_bond(self, bond: BondSpec) -> None:
        if not self.exists(bond.name):
            self.add(AddBond(bond.name, bond.mode, bond.options), DeleteLink(bond.name))
        for slave in bond.slaves:
            if self.master.get(slave) != bond.name:
                if self.is_up(slave):  # the bonding driver takes only slaves that are down
                    self.add(SetUp(slave, False), SetUp(slave, True))
                self._set_master(slave, bond.name)
        if not self.is_up(bond.name):
            self.add(SetUp(bond.name, True), SetUp(bond.name, False))

    def _mtus(self, new: Devices) -> None:
        """Decreases top down, then increases bottom up: no device is ever above the one it sits on."""
        wanted = [(b.name, b.mtu) for b in new.bridges.values()] + [(v.name, v.mtu) for v in new.vlans.values()]
        wanted += list(new.base_mtu.items())
        existing = [(name, mtu) for name, mtu in wanted if self.exists(name)]
        for name, mtu in existing:
            if mtu < self.mtu[name]:
                self._set_mtu(name, mtu)
        for name, mtu in reversed(existing):
            if mtu > self.mtu[name]:
                self._set_mtu(name, mtu)

    def _default_route(self, gateway: str, device: str) -> None:
        defaults = [r for r in self.current.routes if r.family == "inet" and r.destination == "default"]
        if any(r.gateway == gateway and r.device == device for r in defaults):
            return
        same_metric = next((r for r in defaults if r.metric == 0), None)
        undo = _route_op(same_metric) if same_metric else DeleteRoute("default", device, gateway, 0)
        self.add(ReplaceRoute("default", device, gateway, protocol="static"), undo)


def port_mac(links: dict[str, netstate_pb2.Link], device: str, new: Devices, gone: set[str] | frozenset[str] = frozenset()) -> str:
    """The bridge takes its port's MAC, as a bridge with one port would: the host keeps its identity.

    A bond the plan makes (or remakes: `gone`) has no MAC yet; it will take its first slave's.
    """
    if device in new.vlans:
        device = new.vlans[device].parent
    if device in new.bonds and (device not in links or device in gone):
        device = new.bonds[device].slaves[0]
    return links[device].mac if device in links else ""


def _relabel(label: str, port: str, bridge: str) -> str:
    """`eth0:1` becomes `ovirtmgmt:1` when that still fits a link name, else the bridge's name."""
    if not label.startswith(port):
        return label
    moved = bridge + label[len(port):]
    return moved if len(moved.encode()) < rules.IFNAMSIZ else bridge


def _broadcast(address: str, prefix: int) -> str:
    network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    return str(network.broadcast_address) if prefix < 31 else ""


def _address_op(link: str, address: netstate_pb2.Address) -> AddAddress:
    return AddAddress(
        link=link, address=address.address, prefixlen=address.prefixlen, broadcast=address.broadcast,
        label=address.label, noprefixroute="noprefixroute" in address.flags,
        valid_lft=address.valid_lft, preferred_lft=address.preferred_lft,
    )


def _delete_route_op(route: netstate_pb2.Route) -> DeleteRoute:
    return DeleteRoute(route.destination, route.device, route.gateway, route.metric, route.family)


def _route_op(route: netstate_pb2.Route) -> ReplaceRoute:
    return ReplaceRoute(
        destination=route.destination, device=route.device, gateway=route.gateway, metric=route.metric,
        scope=route.scope, protocol=route.protocol, source=route.source, family=route.family,
    )
