"""A vNIC as the manager knows it, typed from the API to the store, and the checks of what admins give.

One model serves every layer: the API maps the contract's `Nic` to a `Vnic`, the
service validates and plans with it, the store maps it to its columns. Its kind
uses the project's three words for how a vNIC attaches (the contract's VNicKind,
the agent's NicKind), so "network" never means two things. Pure: no database,
no gRPC calls.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from typing import Sequence, Union

from virtfleet import rules
from virtfleet.errors import InvalidArgument

DEFAULT_MODEL = "virtio"


class VnicKind(enum.Enum):
    """How a vNIC attaches to the host."""

    BRIDGE = "bridge"                      # a tap (vnetN) on the bridge of a logical network, named after it
    VIRTUAL_NETWORK = "virtual_network"    # a libvirt virtual network on the host
    DIRECT = "direct"                      # macvtap on a host NIC


class DirectMode(enum.Enum):
    """Seed 000-002's macvtap modes."""

    VEPA = "vepa"                # guest to guest through the switch (hairpin)
    BRIDGE = "bridge"            # guest to guest on the host, for vNICs in bridge mode
    PRIVATE = "private"          # no guest to guest on the host
    PASSTHROUGH = "passthrough"  # the whole host NIC, to one guest at a time


@dataclass(frozen=True)
class Qbg:
    """An 802.1Qbg (VEPA/VDP) virtualport; the agent generates `instanceid` when it is empty."""

    managerid: int
    typeid: int
    typeidversion: int
    instanceid: str = ""


@dataclass(frozen=True)
class Qbh:
    """An 802.1Qbh (port profile) virtualport."""

    profileid: str


Virtualport = Union[Qbg, Qbh]

_PCI = re.compile(r"([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])")


@dataclass(frozen=True, order=True)
class PciAddress:
    """Where a vNIC sits on the guest's PCI bus; ordered as the guest numbers its NICs."""

    domain: int
    bus: int
    slot: int
    function: int

    @classmethod
    def parse(cls, text: str) -> "PciAddress":
        """`dddd:bb:ss.f` in lower-case hex, as libvirt reports it (and the database keeps it); ValueError otherwise."""
        m = _PCI.fullmatch(text)
        if not m:
            raise ValueError(f"{text!r} is not a PCI address like 0000:00:03.0")
        return cls(int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4)))

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"


@dataclass(frozen=True)
class Vnic:
    """A vNIC of a VM, template or snapshot.

    `network` is a logical network: the bridge of a BRIDGE vNIC, the VLAN a DIRECT vNIC
    carries (an 802.1Qbg virtualport needs one). `mac` is canonical (virtfleet.macaddr)
    once the pool gave one; templates keep none. `position` is the place in the domain XML.
    """

    name: str
    kind: VnicKind
    network: str | None = None
    virtual_network: str | None = None
    direct_nic: str | None = None
    direct_mode: DirectMode | None = None
    virtualport: Virtualport | None = None
    model: str = DEFAULT_MODEL
    mac: str | None = None
    pci: PciAddress | None = None
    position: int = 0
    host_device: str | None = None          # vnetN / macvtapN while the VM runs
    unplugging: bool = False                # removed from a running VM whose guest has not released it yet
    profile: str | None = None              # its vNIC profile (a network's own has the network's name); None: no network
    link_down: bool = False                 # the cable is out (`vm nic set --link down`)
    profile_out_of_sync: bool = False       # running with an older generation of its profile (`vm nic sync`)

    @property
    def source(self) -> str | None:
        """What it attaches to, by kind: the logical network, the virtual network or the host NIC."""
        return {VnicKind.BRIDGE: self.network, VnicKind.VIRTUAL_NETWORK: self.virtual_network,
                VnicKind.DIRECT: self.direct_nic}[self.kind]


@dataclass(frozen=True)
class VnicRuntime:
    """What a host read back of a defined or running vNIC."""

    name: str
    pci: PciAddress | None
    host_device: str | None


# -- what admins give -----------------------------------------------------------------------------


def attachment_kind(network: str | None, virtual_network: str | None, direct_nic: str | None,
                    field: str) -> VnicKind:
    """The kind an admin's targets say; a direct vNIC may also name a logical network (for its VLAN)."""
    if (virtual_network and (network or direct_nic)) or not (network or virtual_network or direct_nic):
        raise InvalidArgument(field, "give one of network, virtual_network, direct_nic")
    if direct_nic:
        return VnicKind.DIRECT
    return VnicKind.VIRTUAL_NETWORK if virtual_network else VnicKind.BRIDGE


def pci_field(text: str, field: str) -> PciAddress:
    try:
        return PciAddress.parse(text)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None


# The machine type every VM gets (the agent's domain XML names none, so QEMU's default `pc`, i440fx)
# fixes these slots of bus 0: 00 the host bridge, 01 the PIIX3 (ISA, IDE, USB, power management).
# Slot 02 is free: the domain XML has no <graphics>, so libvirt adds no VGA card and gives slot 02 to the
# first vNIC itself. A vNIC asking for a fixed slot is refused here, at create or add, not at its first start.
RESERVED_SLOTS = {0x00: "the host bridge", 0x01: "the PIIX3 ISA/IDE/USB bridge"}
MAX_SLOT = 0x1F


def check_pci(pci: PciAddress, field: str) -> PciAddress:
    """A vNIC's PCI address the guest's machine (pc/i440fx) can give it: a free slot of a PCI bus."""
    if pci.slot > MAX_SLOT:
        raise InvalidArgument(field, f"{pci}: PCI slot {pci.slot:#04x} is above {MAX_SLOT:#04x}")
    if pci.domain == 0 and pci.bus == 0 and pci.slot in RESERVED_SLOTS:
        raise InvalidArgument(field, f"{pci}: slot {pci.slot:#04x} of bus 0 is {RESERVED_SLOTS[pci.slot]}'s on the "
                                     "pc (i440fx) machine; vNICs start at slot 0x02")
    return pci


def check_vnic(v: Vnic, field: str) -> Vnic:
    """Validate an admin's vNIC (names by the shared rules); returns it with the defaults filled in."""
    rules.vnic_name(v.name, f"{field}.name")
    rules.vnic_model(v.model or DEFAULT_MODEL, f"{field}.model")
    if v.pci is not None:
        check_pci(v.pci, f"{field}.pci_address")
    if v.kind is not VnicKind.DIRECT:
        if v.direct_mode is not None or v.virtualport is not None:
            raise InvalidArgument(f"{field}.mode", "mode and virtualport are for direct attachments only")
        return replace(v, model=v.model or DEFAULT_MODEL)
    rules.device_name(v.direct_nic or "", f"{field}.direct_nic", "host NIC")
    return replace(v, direct_mode=v.direct_mode or DirectMode.VEPA, model=v.model or DEFAULT_MODEL)


def check_vnics(vnics: Sequence[Vnic], field: str = "nics") -> list[Vnic]:
    """Each vNIC checked, and names, PCI addresses and MACs each one vNIC's own.

    A MAC given twice is refused here, naming the second vNIC, before the pool is asked
    (the pool would only say the MAC is in use, and by whom: by this very request).
    """
    checked = [check_vnic(v, f"{field}[{i}]") for i, v in enumerate(vnics)]
    names: dict[str, int] = {}
    pcis: dict[PciAddress, int] = {}
    macs: dict[str, int] = {}
    for i, v in enumerate(checked):
        if v.name in names:
            raise InvalidArgument(f"{field}[{i}].name", f"{v.name!r} is already {field}[{names[v.name]}]")
        names[v.name] = i
        if v.pci is not None and v.pci in pcis:
            raise InvalidArgument(f"{field}[{i}].pci_address", f"{v.pci} is already {field}[{pcis[v.pci]}]")
        if v.pci is not None:
            pcis[v.pci] = i
        if v.mac is not None and v.mac in macs:
            raise InvalidArgument(f"{field}[{i}].mac", f"{v.mac} is already {field}[{macs[v.mac]}]'s MAC")
        if v.mac is not None:
            macs[v.mac] = i
    return checked
