"""Typed VM spec: what the manager asks this host to run, independent of libvirt's XML.

The protobuf contract is translated here once (`vm_from_proto`, `nic_from_proto`,
`network_from_proto`) so validation and the XML builders work on plain, immutable
values and can be tested without gRPC.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from virtfleet.v1 import vm_pb2


class NicKind(StrEnum):
    """How a vNIC is attached: the same three words as the contract's VNicKind and the manager's Vnic."""

    BRIDGE = "bridge"    # a tap (vnetN) on a host bridge
    DIRECT = "direct"    # macvtap on a host NIC
    VIRTUAL_NETWORK = "virtual_network"  # a libvirt virtual network

    @property
    def interface_type(self) -> str:
        """libvirt's <interface type=…> for this kind."""
        return "network" if self is NicKind.VIRTUAL_NETWORK else self.value

    @classmethod
    def from_interface_type(cls, text: str) -> "NicKind | None":
        return {k.interface_type: k for k in cls}.get(text)


class DirectMode(StrEnum):
    VEPA = "vepa"
    BRIDGE = "bridge"
    PRIVATE = "private"
    PASSTHROUGH = "passthrough"


class NetworkMode(StrEnum):
    NAT = "nat"
    ROUTED = "route"
    BRIDGED = "bridge"
    ISOLATED = "isolated"
    OPEN = "open"


class VmState(StrEnum):
    SHUTOFF = "shutoff"
    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting-down"
    CRASHED = "crashed"
    BLOCKED = "blocked"
    SUSPENDED = "pmsuspended"


@dataclass(frozen=True)
class PciAddress:
    domain: int = 0
    bus: int = 0
    slot: int = 0
    function: int = 0

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"


@dataclass(frozen=True)
class Qbg:
    """IEEE 802.1Qbg VSI: the switch's manager, type and version, and this instance's UUID."""

    managerid: int
    typeid: int
    typeidversion: int
    instanceid: str = ""  # filled by validation.complete_vm when empty


@dataclass(frozen=True)
class Qbh:
    profileid: str


@dataclass(frozen=True)
class BandwidthLimit:
    """One direction's QoS in libvirt's units: average and peak in kbytes/s, burst in kbytes (0: none)."""

    average: int
    peak: int = 0
    burst: int = 0


@dataclass(frozen=True)
class Bandwidth:
    """None in a direction: no limit that way. Inbound is to the guest, outbound from it."""

    inbound: BandwidthLimit | None = None
    outbound: BandwidthLimit | None = None


@dataclass(frozen=True)
class FilterRef:
    """A libvirt nwfilter by name, with its parameters (IP=…, MAC=…) in the order given."""

    name: str
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VNicSpec:
    name: str
    kind: NicKind | None
    source: str
    mode: DirectMode | None = None  # direct only; None means vepa
    model: str = "virtio"
    mac: str = ""                   # empty: libvirt chooses
    pci: PciAddress | None = None   # None: libvirt assigns at define
    vlan: int = 0                   # the logical network's VLAN id; 802.1Qbg needs one
    virtualport: Qbg | Qbh | None = None
    # From the vNIC's profile (issue 15): QoS, anti-spoofing, mirroring, isolation, MTU, link state.
    bandwidth: Bandwidth | None = None
    filter: FilterRef | None = None
    port_mirroring: bool = False    # bridge only: the bridge's traffic is mirrored to this vNIC's tap
    isolated: bool = False          # bridge only: the port talks only to non-isolated ports
    mtu: int = 0                    # 0: the bridge's (libvirt's default)
    link_down: bool = False


class BootKind(StrEnum):
    NONE = "none"              # diskless: nothing to boot (the VM idles in firmware, or runs paused)
    KERNEL = "kernel"          # direct kernel boot: kernel (+ initrd, cmdline) files on the host
    DISK = "disk"              # a qcow2 or raw image on the host, attached as virtio-blk
    TEST_GUEST = "test_guest"  # the agent's cached test guest (agent/guest), a direct kernel boot


@dataclass(frozen=True)
class BootSource:
    """How a VM boots: at most one of kernel, disk, test_guest (validation.validate_boot says which fields go
    together). boot.resolve_boot turns test_guest into the cached guest's kernel and fills disk_format."""

    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    disk: str = ""
    test_guest: bool = False
    disk_format: str = ""      # qcow2 or raw, probed from the file's header by the agent (not in the contract)

    @property
    def kind(self) -> BootKind:
        if self.test_guest:
            return BootKind.TEST_GUEST
        if self.kernel:
            return BootKind.KERNEL
        if self.disk:
            return BootKind.DISK
        return BootKind.NONE

    @property
    def has_os(self) -> bool:
        return self.kind != BootKind.NONE


@dataclass(frozen=True)
class VmSpec:
    name: str
    memory_mib: int
    vcpus: int
    nics: tuple[VNicSpec, ...] = ()
    uuid: str = ""
    domain_type: str = ""           # "auto"/empty: connection.choose_domain_type decides
    nic_boot_rom: bool = False      # False: <rom enabled='no'/> (iPXE hangs diskless guests under nested KVM)
    boot: BootSource = BootSource()
    console_log: str = ""           # serial console file (the agent fills it for a VM with an OS)


@dataclass(frozen=True)
class VirtualNetworkSpec:
    name: str
    mode: NetworkMode | None
    bridge: str = ""
    uuid: str = ""
    address: str = ""
    prefixlen: int = 0
    dhcp_start: str = ""
    dhcp_end: str = ""
    forward_dev: str = ""


@dataclass(frozen=True)
class VNicRuntime:
    """One vNIC as libvirt reports it (live XML while running)."""

    name: str              # from our alias ua-NAME; empty for a device we did not name
    mac: str
    host_device: str       # vnetN / macvtapN while running
    pci: PciAddress | None
    alias: str
    kind: NicKind | None
    source: str
    mode: DirectMode | None = None
    vsi_instanceid: str = ""


@dataclass(frozen=True)
class VmRuntime:
    name: str
    uuid: str
    domain_type: str
    memory_mib: int
    vcpus: int
    nics: tuple[VNicRuntime, ...] = field(default=())


@dataclass(frozen=True)
class VmStatus:
    runtime: VmRuntime   # from the live XML while running, else from the definition
    state: VmState
    persistent: bool


@dataclass(frozen=True)
class GuestInterface:
    """One NIC as the guest itself names it (through the guest agent)."""

    name: str
    mac: str
    addresses: tuple[str, ...] = ()   # ADDR/PREFIX


@dataclass(frozen=True)
class GuestInterfaces:
    agent_connected: bool
    interfaces: tuple[GuestInterface, ...] = ()


@dataclass(frozen=True)
class VirtualNetworkStatus:
    network: VirtualNetworkSpec
    active: bool
    persistent: bool
    autostart: bool


# --- protobuf <-> typed values -------------------------------------------------------------

_KIND_FROM_PB = {
    vm_pb2.VNIC_KIND_BRIDGE: NicKind.BRIDGE,
    vm_pb2.VNIC_KIND_DIRECT: NicKind.DIRECT,
    vm_pb2.VNIC_KIND_VIRTUAL_NETWORK: NicKind.VIRTUAL_NETWORK,
}
_KIND_TO_PB = {v: k for k, v in _KIND_FROM_PB.items()}
_MODE_FROM_PB = {
    vm_pb2.DIRECT_MODE_VEPA: DirectMode.VEPA,
    vm_pb2.DIRECT_MODE_BRIDGE: DirectMode.BRIDGE,
    vm_pb2.DIRECT_MODE_PRIVATE: DirectMode.PRIVATE,
    vm_pb2.DIRECT_MODE_PASSTHROUGH: DirectMode.PASSTHROUGH,
}
_MODE_TO_PB = {v: k for k, v in _MODE_FROM_PB.items()}
_NETMODE_FROM_PB = {
    vm_pb2.VIRTUAL_NETWORK_MODE_NAT: NetworkMode.NAT,
    vm_pb2.VIRTUAL_NETWORK_MODE_ROUTED: NetworkMode.ROUTED,
    vm_pb2.VIRTUAL_NETWORK_MODE_BRIDGED: NetworkMode.BRIDGED,
    vm_pb2.VIRTUAL_NETWORK_MODE_ISOLATED: NetworkMode.ISOLATED,
    vm_pb2.VIRTUAL_NETWORK_MODE_OPEN: NetworkMode.OPEN,
}
_NETMODE_TO_PB = {v: k for k, v in _NETMODE_FROM_PB.items()}


def _pci_from_proto(msg: vm_pb2.VNic | vm_pb2.VNicRuntime) -> PciAddress | None:
    if not msg.HasField("pci"):
        return None
    p = msg.pci
    return PciAddress(p.domain, p.bus, p.slot, p.function)


def _pci_to_proto(pci: PciAddress | None) -> vm_pb2.PciAddress | None:
    return None if pci is None else vm_pb2.PciAddress(domain=pci.domain, bus=pci.bus, slot=pci.slot,
                                                       function=pci.function)


def _limit_from_proto(msg: vm_pb2.BandwidthLimit) -> BandwidthLimit | None:
    if not (msg.average or msg.peak or msg.burst):
        return None
    return BandwidthLimit(msg.average, msg.peak, msg.burst)


def _bandwidth_from_proto(msg: vm_pb2.VNic) -> Bandwidth | None:
    if not msg.HasField("bandwidth"):
        return None
    bw = Bandwidth(_limit_from_proto(msg.bandwidth.inbound), _limit_from_proto(msg.bandwidth.outbound))
    return None if bw == Bandwidth() else bw


def _filter_from_proto(msg: vm_pb2.VNic) -> FilterRef | None:
    """Unset or an empty name: no filter. Parameters without a name are kept, for validation to refuse."""
    f = msg.filter
    if not f.name and not f.parameters:
        return None
    return FilterRef(f.name, tuple((p.name, p.value) for p in f.parameters))


def nic_from_proto(msg: vm_pb2.VNic) -> VNicSpec:
    port: Qbg | Qbh | None = None
    which = msg.WhichOneof("virtualport")
    if which == "qbg":
        port = Qbg(msg.qbg.managerid, msg.qbg.typeid, msg.qbg.typeidversion, msg.qbg.instanceid)
    elif which == "qbh":
        port = Qbh(msg.qbh.profileid)
    return VNicSpec(
        name=msg.name, kind=_KIND_FROM_PB.get(msg.kind), source=msg.source, mode=_MODE_FROM_PB.get(msg.mode),
        model=msg.model or "virtio", mac=msg.mac.lower(), pci=_pci_from_proto(msg), vlan=msg.vlan,
        virtualport=port, bandwidth=_bandwidth_from_proto(msg), filter=_filter_from_proto(msg),
        port_mirroring=msg.port_mirroring, isolated=msg.isolated, mtu=msg.mtu, link_down=msg.link_down,
    )


def boot_from_proto(msg: vm_pb2.BootSource) -> BootSource:
    return BootSource(kernel=msg.kernel, initrd=msg.initrd, cmdline=msg.cmdline, disk=msg.disk,
                      test_guest=msg.test_guest)


def vm_from_proto(msg: vm_pb2.VmSpec) -> VmSpec:
    return VmSpec(
        name=msg.name, memory_mib=msg.memory_mib, vcpus=msg.vcpus,
        nics=tuple(nic_from_proto(n) for n in msg.nics), uuid=msg.uuid.lower(),
        domain_type=msg.domain_type, nic_boot_rom=msg.nic_boot_rom,
        boot=boot_from_proto(msg.boot) if msg.HasField("boot") else BootSource(),
    )


def network_from_proto(msg: vm_pb2.VirtualNetwork) -> VirtualNetworkSpec:
    return VirtualNetworkSpec(
        name=msg.name, mode=_NETMODE_FROM_PB.get(msg.mode), bridge=msg.bridge, uuid=msg.uuid.lower(),
        address=msg.address, prefixlen=msg.prefixlen, dhcp_start=msg.dhcp_start, dhcp_end=msg.dhcp_end,
        forward_dev=msg.forward_dev,
    )


def network_to_proto(net: VirtualNetworkSpec) -> vm_pb2.VirtualNetwork:
    return vm_pb2.VirtualNetwork(
        name=net.name, mode=_NETMODE_TO_PB.get(net.mode, 0), bridge=net.bridge, uuid=net.uuid,
        address=net.address, prefixlen=net.prefixlen, dhcp_start=net.dhcp_start, dhcp_end=net.dhcp_end,
        forward_dev=net.forward_dev,
    )


_STATE_TO_PB = {
    VmState.SHUTOFF: vm_pb2.VM_STATE_SHUTOFF, VmState.RUNNING: vm_pb2.VM_STATE_RUNNING,
    VmState.PAUSED: vm_pb2.VM_STATE_PAUSED, VmState.SHUTTING_DOWN: vm_pb2.VM_STATE_SHUTTING_DOWN,
    VmState.CRASHED: vm_pb2.VM_STATE_CRASHED, VmState.BLOCKED: vm_pb2.VM_STATE_BLOCKED,
    VmState.SUSPENDED: vm_pb2.VM_STATE_SUSPENDED,
}


def vm_status_to_proto(status: VmStatus) -> vm_pb2.VmStatus:
    rt = status.runtime
    return vm_pb2.VmStatus(
        name=rt.name, uuid=rt.uuid, state=_STATE_TO_PB[status.state], persistent=status.persistent,
        domain_type=rt.domain_type, memory_mib=rt.memory_mib, vcpus=rt.vcpus,
        nics=[nic_runtime_to_proto(n) for n in rt.nics],
    )


def network_status_to_proto(status: VirtualNetworkStatus) -> vm_pb2.VirtualNetworkStatus:
    return vm_pb2.VirtualNetworkStatus(network=network_to_proto(status.network), active=status.active,
                                       persistent=status.persistent, autostart=status.autostart)


def nic_runtime_to_proto(nic: VNicRuntime) -> vm_pb2.VNicRuntime:
    return vm_pb2.VNicRuntime(
        name=nic.name, mac=nic.mac, host_device=nic.host_device, pci=_pci_to_proto(nic.pci), alias=nic.alias,
        kind=_KIND_TO_PB.get(nic.kind, 0), source=nic.source, mode=_MODE_TO_PB.get(nic.mode, 0),
        vsi_instanceid=nic.vsi_instanceid,
    )


def guest_interfaces_to_proto(found: GuestInterfaces) -> vm_pb2.GetGuestInterfacesResponse:
    return vm_pb2.GetGuestInterfacesResponse(
        agent_connected=found.agent_connected,
        interfaces=[vm_pb2.GuestInterface(name=i.name, mac=i.mac, addresses=list(i.addresses))
                    for i in found.interfaces])
