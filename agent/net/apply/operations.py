"""Single kernel changes, as typed values: what a plan is made of.

Each operation knows how to say itself as the `ip` command an admin would
type (that text is what dry runs and results show) and how to carry itself
out through netlink. Operations are plain data so a journal can store them and
a restarted agent can replay them.

`apply(..., tolerant=True)` treats "already so" answers from the kernel as
success. Recovery after a crash needs that: it cannot know whether the agent
died before or after a step reached the kernel, so every undo must be safe to
run either way.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import socket
from dataclasses import dataclass
from typing import Any, ClassVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net.netlink import names
from agent.net.netlink.socket import IFA_F_NOPREFIXROUTE, RT_TABLE_MAIN


@dataclass(frozen=True)
class AddBridge:
    name: str
    mac: str
    mtu: int
    stp: bool = False
    already_so: ClassVar[frozenset[int]] = frozenset({errno.EEXIST})

    def describe(self) -> str:
        return f"ip link add {self.name} address {self.mac} mtu {self.mtu} type bridge stp_state {int(self.stp)}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("add", ifname=self.name, kind="bridge", address=self.mac, mtu=self.mtu, br_stp_state=int(self.stp))


@dataclass(frozen=True)
class DeleteLink:
    name: str
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        return f"ip link del {self.name}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("del", ifname=self.name)


@dataclass(frozen=True)
class SetMaster:
    """Enslave `link` to `master`, or free it when master is empty."""

    link: str
    master: str
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        target = f"master {self.master}" if self.master else "nomaster"
        return f"ip link set {self.link} {target}"

    def apply(self, ipr: IPRoute) -> None:
        master = _index(ipr, self.master) if self.master else 0
        ipr.link("set", ifname=self.link, master=master)


@dataclass(frozen=True)
class SetUp:
    link: str
    up: bool
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        return f"ip link set {self.link} {'up' if self.up else 'down'}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("set", ifname=self.link, state="up" if self.up else "down")


@dataclass(frozen=True)
class SetMac:
    link: str
    mac: str
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        return f"ip link set {self.link} address {self.mac}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("set", ifname=self.link, address=self.mac)


@dataclass(frozen=True)
class SetMtu:
    link: str
    mtu: int
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        return f"ip link set {self.link} mtu {self.mtu}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("set", ifname=self.link, mtu=self.mtu)


@dataclass(frozen=True)
class SetStp:
    bridge: str
    enabled: bool
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        return f"ip link set {self.bridge} type bridge stp_state {int(self.enabled)}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("set", ifname=self.bridge, kind="bridge", br_stp_state=int(self.enabled))


@dataclass(frozen=True)
class AddAddress:
    link: str
    address: str
    prefixlen: int
    broadcast: str = ""
    label: str = ""
    noprefixroute: bool = False
    valid_lft: int = -1
    preferred_lft: int = -1
    already_so: ClassVar[frozenset[int]] = frozenset({errno.EEXIST})

    def describe(self) -> str:
        words = [f"ip addr add {self.address}/{self.prefixlen}"]
        if self.broadcast:
            words.append(f"brd {self.broadcast}")
        words.append(f"dev {self.link}")
        if self.label and self.label != self.link:
            words.append(f"label {self.label}")
        if self.noprefixroute:
            words.append("noprefixroute")
        if self.valid_lft >= 0:
            words.append(f"valid_lft {self.valid_lft} preferred_lft {max(self.preferred_lft, 0)}")
        return " ".join(words)

    def apply(self, ipr: IPRoute) -> None:
        request: dict[str, Any] = {"index": _index(ipr, self.link), "address": self.address, "prefixlen": self.prefixlen}
        if self.broadcast:
            request["broadcast"] = self.broadcast
        if self.label:
            request["label"] = self.label
        if self.noprefixroute:
            request["IFA_FLAGS"] = IFA_F_NOPREFIXROUTE
        if self.valid_lft >= 0:
            request["valid_lft"] = self.valid_lft
            request["preferred_lft"] = max(self.preferred_lft, 0)
        ipr.addr("add", **request)


@dataclass(frozen=True)
class DeleteAddress:
    link: str
    address: str
    prefixlen: int
    already_so: ClassVar[frozenset[int]] = frozenset({errno.EADDRNOTAVAIL, errno.ENODEV})

    def describe(self) -> str:
        return f"ip addr del {self.address}/{self.prefixlen} dev {self.link}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.addr("del", index=_index(ipr, self.link), address=self.address, prefixlen=self.prefixlen)


@dataclass(frozen=True)
class ReplaceRoute:
    """Point a route at a device; the kernel swaps it in place, so traffic never lacks a route."""

    destination: str
    device: str
    gateway: str = ""
    metric: int = 0
    scope: str = "global"
    protocol: str = "boot"
    source: str = ""
    family: str = "inet"
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def describe(self) -> str:
        words = [f"ip{' -6' if self.family == 'inet6' else ''} route replace {self.destination}"]
        if self.gateway:
            words.append(f"via {self.gateway}")
        words.append(f"dev {self.device}")
        if self.protocol != "boot":
            words.append(f"proto {self.protocol}")
        if self.scope != ("global" if self.gateway else "link"):  # what ip would pick unasked
            words.append(f"scope {self.scope}")
        if self.source:
            words.append(f"src {self.source}")
        if self.metric:
            words.append(f"metric {self.metric}")
        return " ".join(words)

    def apply(self, ipr: IPRoute) -> None:
        family = socket.AF_INET6 if self.family == "inet6" else socket.AF_INET
        default = "::/0" if family == socket.AF_INET6 else "0.0.0.0/0"
        request: dict[str, Any] = {
            "family": family,
            "dst": default if self.destination == "default" else self.destination,
            "oif": _index(ipr, self.device),
            "table": RT_TABLE_MAIN,
            "priority": self.metric,
            "scope": names.scope_number(self.scope),
            "proto": names.protocol_number(self.protocol),
        }
        if self.gateway:
            request["gateway"] = self.gateway
        if self.source:
            request["prefsrc"] = self.source
        ipr.route("replace", **request)


@dataclass(frozen=True)
class DeleteRoute:
    """Take away a route this agent made; the undo of a ReplaceRoute that had nothing to replace."""

    destination: str
    device: str
    gateway: str = ""
    metric: int = 0
    family: str = "inet"
    already_so: ClassVar[frozenset[int]] = frozenset({errno.ESRCH, errno.ENODEV})

    def describe(self) -> str:
        words = [f"ip{' -6' if self.family == 'inet6' else ''} route del {self.destination}"]
        if self.gateway:
            words.append(f"via {self.gateway}")
        words.append(f"dev {self.device}")
        if self.metric:
            words.append(f"metric {self.metric}")
        return " ".join(words)

    def apply(self, ipr: IPRoute) -> None:
        family = socket.AF_INET6 if self.family == "inet6" else socket.AF_INET
        default = "::/0" if family == socket.AF_INET6 else "0.0.0.0/0"
        request: dict[str, Any] = {
            "family": family,
            "dst": default if self.destination == "default" else self.destination,
            "oif": _index(ipr, self.device),
            "table": RT_TABLE_MAIN,
            "priority": self.metric,
        }
        if self.gateway:
            request["gateway"] = self.gateway
        ipr.route("del", **request)


@dataclass(frozen=True)
class AddVlan:
    """An 802.1Q device `parent.vlan_id` on a NIC or bond."""

    name: str
    parent: str
    vlan_id: int
    mtu: int
    already_so: ClassVar[frozenset[int]] = frozenset({errno.EEXIST})

    def describe(self) -> str:
        return f"ip link add link {self.parent} name {self.name} mtu {self.mtu} type vlan id {self.vlan_id}"

    def apply(self, ipr: IPRoute) -> None:
        ipr.link("add", ifname=self.name, kind="vlan", link=_index(ipr, self.parent), vlan_id=self.vlan_id, mtu=self.mtu)


@dataclass(frozen=True)
class AddBond:
    """A bond without slaves; `options` reads `miimon=100,updelay=0` (the kernel's option names)."""

    name: str
    mode: int
    options: str = ""
    already_so: ClassVar[frozenset[int]] = frozenset({errno.EEXIST})

    def describe(self) -> str:
        words = [f"ip link add {self.name} type bond mode {self.mode}"]
        words += [f"{key} {value}" for key, value in _pairs(self.options)]
        return " ".join(words)

    def apply(self, ipr: IPRoute) -> None:
        spec: dict[str, Any] = {"bond_mode": self.mode}
        for key, value in _pairs(self.options):
            spec[f"bond_{key}"] = int(value) if value.isdigit() else value
        ipr.link("add", ifname=self.name, kind="bond", **spec)


Operation = (
    AddBridge | DeleteLink | SetMaster | SetUp | SetMac | SetMtu | SetStp | AddAddress | DeleteAddress | ReplaceRoute
    | DeleteRoute | AddVlan | AddBond
)
_BY_NAME: dict[str, type[Operation]] = {cls.__name__: cls for cls in Operation.__args__}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Step:
    """One change and the change that takes it back: what plans are made of and journals hold."""

    do: Operation
    undo: Operation

    def describe(self) -> str:
        return self.do.describe()


def apply(ipr: IPRoute, operation: Operation, *, tolerant: bool = False) -> None:
    """Carry out one operation; with `tolerant`, an "already so" refusal counts as done."""
    try:
        operation.apply(ipr)
    except NetlinkError as error:
        if not (tolerant and error.code in operation.already_so):
            raise


def to_json(operation: Operation) -> dict[str, Any]:
    # Fields are all plain values, so a shallow copy will do: asdict's deep copy was a
    # sizeable part of journaling a thousand-step plan.
    return {"op": type(operation).__name__, **{name: getattr(operation, name) for name in _field_names(type(operation))}}


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


def from_json(data: dict[str, Any]) -> Operation:
    fields = dict(data)
    return _BY_NAME[fields.pop("op")](**fields)


def _index(ipr: IPRoute, name: str) -> int:
    """Addresses and routes name their device by index; ENODEV if it is gone."""
    return int(ipr.link("get", ifname=name)[0]["index"])


def _pairs(options: str) -> list[tuple[str, str]]:
    return [tuple(item.split("=", 1)) for item in options.split(",") if item]  # type: ignore[misc]
