"""What the audit looks at, typed: gathered by the service from PostgreSQL and the monitor."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from virtfleet.v1 import hostnet_pb2, netstate_pb2

from ..domain.guestnames import GuestNamed
from ..domain.vmorder import SourceNic
from ..domain.vmstate import Verdict
from ..domain.vnic import VnicKind


@dataclass(frozen=True)
class HostInput:
    name: str
    address: str                                   # management address the manager enrolled
    state: netstate_pb2.NetworkState | None        # None: never reported
    reachable: bool
    silent_s: float | None                         # seconds since the last report, None when never
    desired: list[hostnet_pb2.NetworkAttachment] = field(default_factory=list)


class VnicInput(NamedTuple):
    """One vNIC of a VM as the manager recorded it (a tuple: a datacenter has a hundred thousand)."""

    vm: str
    name: str
    mac: str
    kind: VnicKind                   # BRIDGE: a tap on the network's bridge; DIRECT: a macvtap
    host: str | None = None          # where the VM runs; None when it is down
    network: str | None = None       # logical network (its bridge has its name)
    direct_nic: str | None = None
    direct_mode: str | None = None
    host_device: str | None = None   # vnetN / macvtapN while running, when known
    pci_address: str | None = None
    position: int = 0
    link_down: bool = False          # the cable is out (SetNicLink): its host device should be down too


@dataclass(frozen=True)
class NicOrderInput:
    """A VM made from a template or snapshot, with the source's vNICs and its own as the order rules see them."""

    vm: str
    source_kind: str                 # "template" or "snapshot"
    source_name: str
    source: list[SourceNic]
    nics: list[SourceNic]            # the VM's


class ProfileSyncInput(NamedTuple):
    """A running vNIC given an older generation of its profile than the profile has now."""

    vm: str
    nic: str
    host: str
    profile: str
    applied: int | None              # None: started before vNIC profiles existed
    current: int


@dataclass(frozen=True)
class GuestNicInput:
    """A VM made from a template or snapshot: what its guest last called each vNIC, and its source VM's guest."""

    vm: str
    source_kind: str                 # "template" or "snapshot"
    source_name: str
    source: list[GuestNamed]         # as the template or snapshot kept them
    nics: list[GuestNamed]           # the VM's, in its guest order (last seen)


@dataclass(frozen=True)
class FleetInput:
    hosts: list[HostInput]
    vnics: list[VnicInput] = field(default_factory=list)
    allocated_macs: set[str] | set[int] | None = None   # text or 48-bit integers; None: no pools, no foreign check
    nic_orders: list[NicOrderInput] = field(default_factory=list)
    unreachable_after_s: float = 30.0
    profile_sync: list[ProfileSyncInput] = field(default_factory=list)
    guest_nics: list[GuestNicInput] = field(default_factory=list)
    vm_state: list[Verdict] = field(default_factory=list)   # a reconciliation pass's verdicts (vmstate.py)
