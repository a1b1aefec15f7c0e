from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VNicKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VNIC_KIND_UNSPECIFIED: _ClassVar[VNicKind]
    VNIC_KIND_BRIDGE: _ClassVar[VNicKind]
    VNIC_KIND_DIRECT: _ClassVar[VNicKind]
    VNIC_KIND_VIRTUAL_NETWORK: _ClassVar[VNicKind]

class DirectMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECT_MODE_UNSPECIFIED: _ClassVar[DirectMode]
    DIRECT_MODE_VEPA: _ClassVar[DirectMode]
    DIRECT_MODE_BRIDGE: _ClassVar[DirectMode]
    DIRECT_MODE_PRIVATE: _ClassVar[DirectMode]
    DIRECT_MODE_PASSTHROUGH: _ClassVar[DirectMode]

class VmState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VM_STATE_UNSPECIFIED: _ClassVar[VmState]
    VM_STATE_SHUTOFF: _ClassVar[VmState]
    VM_STATE_RUNNING: _ClassVar[VmState]
    VM_STATE_PAUSED: _ClassVar[VmState]
    VM_STATE_SHUTTING_DOWN: _ClassVar[VmState]
    VM_STATE_CRASHED: _ClassVar[VmState]
    VM_STATE_BLOCKED: _ClassVar[VmState]
    VM_STATE_SUSPENDED: _ClassVar[VmState]

class VirtualNetworkMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIRTUAL_NETWORK_MODE_UNSPECIFIED: _ClassVar[VirtualNetworkMode]
    VIRTUAL_NETWORK_MODE_NAT: _ClassVar[VirtualNetworkMode]
    VIRTUAL_NETWORK_MODE_ROUTED: _ClassVar[VirtualNetworkMode]
    VIRTUAL_NETWORK_MODE_BRIDGED: _ClassVar[VirtualNetworkMode]
    VIRTUAL_NETWORK_MODE_ISOLATED: _ClassVar[VirtualNetworkMode]
    VIRTUAL_NETWORK_MODE_OPEN: _ClassVar[VirtualNetworkMode]
VNIC_KIND_UNSPECIFIED: VNicKind
VNIC_KIND_BRIDGE: VNicKind
VNIC_KIND_DIRECT: VNicKind
VNIC_KIND_VIRTUAL_NETWORK: VNicKind
DIRECT_MODE_UNSPECIFIED: DirectMode
DIRECT_MODE_VEPA: DirectMode
DIRECT_MODE_BRIDGE: DirectMode
DIRECT_MODE_PRIVATE: DirectMode
DIRECT_MODE_PASSTHROUGH: DirectMode
VM_STATE_UNSPECIFIED: VmState
VM_STATE_SHUTOFF: VmState
VM_STATE_RUNNING: VmState
VM_STATE_PAUSED: VmState
VM_STATE_SHUTTING_DOWN: VmState
VM_STATE_CRASHED: VmState
VM_STATE_BLOCKED: VmState
VM_STATE_SUSPENDED: VmState
VIRTUAL_NETWORK_MODE_UNSPECIFIED: VirtualNetworkMode
VIRTUAL_NETWORK_MODE_NAT: VirtualNetworkMode
VIRTUAL_NETWORK_MODE_ROUTED: VirtualNetworkMode
VIRTUAL_NETWORK_MODE_BRIDGED: VirtualNetworkMode
VIRTUAL_NETWORK_MODE_ISOLATED: VirtualNetworkMode
VIRTUAL_NETWORK_MODE_OPEN: VirtualNetworkMode

class PciAddress(_message.Message):
    __slots__ = ("domain", "bus", "slot", "function")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    BUS_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    domain: int
    bus: int
    slot: int
    function: int
    def __init__(self, domain: _Optional[int] = ..., bus: _Optional[int] = ..., slot: _Optional[int] = ..., function: _Optional[int] = ...) -> None: ...

class Virtualport8021Qbg(_message.Message):
    __slots__ = ("managerid", "typeid", "typeidversion", "instanceid")
    MANAGERID_FIELD_NUMBER: _ClassVar[int]
    TYPEID_FIELD_NUMBER: _ClassVar[int]
    TYPEIDVERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCEID_FIELD_NUMBER: _ClassVar[int]
    managerid: int
    typeid: int
    typeidversion: int
    instanceid: str
    def __init__(self, managerid: _Optional[int] = ..., typeid: _Optional[int] = ..., typeidversion: _Optional[int] = ..., instanceid: _Optional[str] = ...) -> None: ...

class Virtualport8021Qbh(_message.Message):
    __slots__ = ("profileid",)
    PROFILEID_FIELD_NUMBER: _ClassVar[int]
    profileid: str
    def __init__(self, profileid: _Optional[str] = ...) -> None: ...

class VNic(_message.Message):
    __slots__ = ("name", "kind", "source", "mode", "model", "mac", "pci", "vlan", "qbg", "qbh", "bandwidth", "filter", "port_mirroring", "isolated", "mtu", "link_down")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    PCI_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    QBG_FIELD_NUMBER: _ClassVar[int]
    QBH_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PORT_MIRRORING_FIELD_NUMBER: _ClassVar[int]
    ISOLATED_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    LINK_DOWN_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: VNicKind
    source: str
    mode: DirectMode
    model: str
    mac: str
    pci: PciAddress
    vlan: int
    qbg: Virtualport8021Qbg
    qbh: Virtualport8021Qbh
    bandwidth: Bandwidth
    filter: NetworkFilter
    port_mirroring: bool
    isolated: bool
    mtu: int
    link_down: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[VNicKind, str]] = ..., source: _Optional[str] = ..., mode: _Optional[_Union[DirectMode, str]] = ..., model: _Optional[str] = ..., mac: _Optional[str] = ..., pci: _Optional[_Union[PciAddress, _Mapping]] = ..., vlan: _Optional[int] = ..., qbg: _Optional[_Union[Virtualport8021Qbg, _Mapping]] = ..., qbh: _Optional[_Union[Virtualport8021Qbh, _Mapping]] = ..., bandwidth: _Optional[_Union[Bandwidth, _Mapping]] = ..., filter: _Optional[_Union[NetworkFilter, _Mapping]] = ..., port_mirroring: _Optional[bool] = ..., isolated: _Optional[bool] = ..., mtu: _Optional[int] = ..., link_down: _Optional[bool] = ...) -> None: ...

class BandwidthLimit(_message.Message):
    __slots__ = ("average", "peak", "burst")
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    average: int
    peak: int
    burst: int
    def __init__(self, average: _Optional[int] = ..., peak: _Optional[int] = ..., burst: _Optional[int] = ...) -> None: ...

class Bandwidth(_message.Message):
    __slots__ = ("inbound", "outbound")
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_FIELD_NUMBER: _ClassVar[int]
    inbound: BandwidthLimit
    outbound: BandwidthLimit
    def __init__(self, inbound: _Optional[_Union[BandwidthLimit, _Mapping]] = ..., outbound: _Optional[_Union[BandwidthLimit, _Mapping]] = ...) -> None: ...

class NetworkFilter(_message.Message):
    __slots__ = ("name", "parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    parameters: _containers.RepeatedCompositeFieldContainer[FilterParameter]
    def __init__(self, name: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[FilterParameter, _Mapping]]] = ...) -> None: ...

class FilterParameter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class BootSource(_message.Message):
    __slots__ = ("kernel", "initrd", "cmdline", "disk", "test_guest")
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INITRD_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    TEST_GUEST_FIELD_NUMBER: _ClassVar[int]
    kernel: str
    initrd: str
    cmdline: str
    disk: str
    test_guest: bool
    def __init__(self, kernel: _Optional[str] = ..., initrd: _Optional[str] = ..., cmdline: _Optional[str] = ..., disk: _Optional[str] = ..., test_guest: _Optional[bool] = ...) -> None: ...

class VmSpec(_message.Message):
    __slots__ = ("name", "uuid", "memory_mib", "vcpus", "nics", "domain_type", "nic_boot_rom", "boot")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    NIC_BOOT_ROM_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    name: str
    uuid: str
    memory_mib: int
    vcpus: int
    nics: _containers.RepeatedCompositeFieldContainer[VNic]
    domain_type: str
    nic_boot_rom: bool
    boot: BootSource
    def __init__(self, name: _Optional[str] = ..., uuid: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[VNic, _Mapping]]] = ..., domain_type: _Optional[str] = ..., nic_boot_rom: _Optional[bool] = ..., boot: _Optional[_Union[BootSource, _Mapping]] = ...) -> None: ...

class VNicRuntime(_message.Message):
    __slots__ = ("name", "mac", "host_device", "pci", "alias", "kind", "source", "mode", "vsi_instanceid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    HOST_DEVICE_FIELD_NUMBER: _ClassVar[int]
    PCI_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VSI_INSTANCEID_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    host_device: str
    pci: PciAddress
    alias: str
    kind: VNicKind
    source: str
    mode: DirectMode
    vsi_instanceid: str
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., host_device: _Optional[str] = ..., pci: _Optional[_Union[PciAddress, _Mapping]] = ..., alias: _Optional[str] = ..., kind: _Optional[_Union[VNicKind, str]] = ..., source: _Optional[str] = ..., mode: _Optional[_Union[DirectMode, str]] = ..., vsi_instanceid: _Optional[str] = ...) -> None: ...

class VmStatus(_message.Message):
    __slots__ = ("name", "uuid", "state", "persistent", "domain_type", "memory_mib", "vcpus", "nics")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    name: str
    uuid: str
    state: VmState
    persistent: bool
    domain_type: str
    memory_mib: int
    vcpus: int
    nics: _containers.RepeatedCompositeFieldContainer[VNicRuntime]
    def __init__(self, name: _Optional[str] = ..., uuid: _Optional[str] = ..., state: _Optional[_Union[VmState, str]] = ..., persistent: _Optional[bool] = ..., domain_type: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[VNicRuntime, _Mapping]]] = ...) -> None: ...

class DefineVmRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: VmSpec
    def __init__(self, spec: _Optional[_Union[VmSpec, _Mapping]] = ...) -> None: ...

class StartVmRequest(_message.Message):
    __slots__ = ("name", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class StopVmRequest(_message.Message):
    __slots__ = ("name", "timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    timeout_s: int
    def __init__(self, name: _Optional[str] = ..., timeout_s: _Optional[int] = ...) -> None: ...

class StopVmResponse(_message.Message):
    __slots__ = ("vm", "destroyed")
    VM_FIELD_NUMBER: _ClassVar[int]
    DESTROYED_FIELD_NUMBER: _ClassVar[int]
    vm: VmStatus
    destroyed: bool
    def __init__(self, vm: _Optional[_Union[VmStatus, _Mapping]] = ..., destroyed: _Optional[bool] = ...) -> None: ...

class DestroyVmRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UndefineVmRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UndefineVmResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms",)
    VMS_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VmStatus]
    def __init__(self, vms: _Optional[_Iterable[_Union[VmStatus, _Mapping]]] = ...) -> None: ...

class GetVmRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AttachNicRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: VNic
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[_Union[VNic, _Mapping]] = ...) -> None: ...

class DetachNicRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: str
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[str] = ...) -> None: ...

class UpdateNicRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: VNic
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[_Union[VNic, _Mapping]] = ...) -> None: ...

class UpdateNicResponse(_message.Message):
    __slots__ = ("vm", "applied_live", "needs_restart")
    VM_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LIVE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_RESTART_FIELD_NUMBER: _ClassVar[int]
    vm: VmStatus
    applied_live: bool
    needs_restart: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vm: _Optional[_Union[VmStatus, _Mapping]] = ..., applied_live: _Optional[bool] = ..., needs_restart: _Optional[_Iterable[str]] = ...) -> None: ...

class GetGuestInterfacesRequest(_message.Message):
    __slots__ = ("vm", "timeout_s")
    VM_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    vm: str
    timeout_s: int
    def __init__(self, vm: _Optional[str] = ..., timeout_s: _Optional[int] = ...) -> None: ...

class GuestInterface(_message.Message):
    __slots__ = ("name", "mac", "addresses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class GetGuestInterfacesResponse(_message.Message):
    __slots__ = ("agent_connected", "interfaces")
    AGENT_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    agent_connected: bool
    interfaces: _containers.RepeatedCompositeFieldContainer[GuestInterface]
    def __init__(self, agent_connected: _Optional[bool] = ..., interfaces: _Optional[_Iterable[_Union[GuestInterface, _Mapping]]] = ...) -> None: ...

class VirtualNetwork(_message.Message):
    __slots__ = ("name", "mode", "bridge", "uuid", "address", "prefixlen", "dhcp_start", "dhcp_end", "forward_dev")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREFIXLEN_FIELD_NUMBER: _ClassVar[int]
    DHCP_START_FIELD_NUMBER: _ClassVar[int]
    DHCP_END_FIELD_NUMBER: _ClassVar[int]
    FORWARD_DEV_FIELD_NUMBER: _ClassVar[int]
    name: str
    mode: VirtualNetworkMode
    bridge: str
    uuid: str
    address: str
    prefixlen: int
    dhcp_start: str
    dhcp_end: str
    forward_dev: str
    def __init__(self, name: _Optional[str] = ..., mode: _Optional[_Union[VirtualNetworkMode, str]] = ..., bridge: _Optional[str] = ..., uuid: _Optional[str] = ..., address: _Optional[str] = ..., prefixlen: _Optional[int] = ..., dhcp_start: _Optional[str] = ..., dhcp_end: _Optional[str] = ..., forward_dev: _Optional[str] = ...) -> None: ...

class VirtualNetworkStatus(_message.Message):
    __slots__ = ("network", "active", "persistent", "autostart")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_FIELD_NUMBER: _ClassVar[int]
    AUTOSTART_FIELD_NUMBER: _ClassVar[int]
    network: VirtualNetwork
    active: bool
    persistent: bool
    autostart: bool
    def __init__(self, network: _Optional[_Union[VirtualNetwork, _Mapping]] = ..., active: _Optional[bool] = ..., persistent: _Optional[bool] = ..., autostart: _Optional[bool] = ...) -> None: ...

class DefineVirtualNetworkRequest(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: VirtualNetwork
    def __init__(self, network: _Optional[_Union[VirtualNetwork, _Mapping]] = ...) -> None: ...

class StartVirtualNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DestroyVirtualNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UndefineVirtualNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UndefineVirtualNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVirtualNetworksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVirtualNetworksResponse(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[VirtualNetworkStatus]
    def __init__(self, networks: _Optional[_Iterable[_Union[VirtualNetworkStatus, _Mapping]]] = ...) -> None: ...

class MigrateVmRequest(_message.Message):
    __slots__ = ("name", "dest_uri", "migrate_uri", "max_downtime_ms", "bandwidth_mib_s", "auto_converge", "post_copy", "timeout_s", "dest_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEST_URI_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_URI_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    AUTO_CONVERGE_FIELD_NUMBER: _ClassVar[int]
    POST_COPY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    DEST_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    dest_uri: str
    migrate_uri: str
    max_downtime_ms: int
    bandwidth_mib_s: int
    auto_converge: bool
    post_copy: bool
    timeout_s: int
    dest_name: str
    def __init__(self, name: _Optional[str] = ..., dest_uri: _Optional[str] = ..., migrate_uri: _Optional[str] = ..., max_downtime_ms: _Optional[int] = ..., bandwidth_mib_s: _Optional[int] = ..., auto_converge: _Optional[bool] = ..., post_copy: _Optional[bool] = ..., timeout_s: _Optional[int] = ..., dest_name: _Optional[str] = ...) -> None: ...

class MigrateVmResponse(_message.Message):
    __slots__ = ("final",)
    FINAL_FIELD_NUMBER: _ClassVar[int]
    final: MigrationJob
    def __init__(self, final: _Optional[_Union[MigrationJob, _Mapping]] = ...) -> None: ...

class GetMigrationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MigrationJob(_message.Message):
    __slots__ = ("active", "time_elapsed_ms", "data_total", "data_processed", "data_remaining", "dirty_rate", "expected_downtime_ms", "downtime_ms", "memory_bps", "phase")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    TIME_ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    DATA_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DATA_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    DATA_REMAINING_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BPS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    active: bool
    time_elapsed_ms: int
    data_total: int
    data_processed: int
    data_remaining: int
    dirty_rate: int
    expected_downtime_ms: int
    downtime_ms: int
    memory_bps: int
    phase: str
    def __init__(self, active: _Optional[bool] = ..., time_elapsed_ms: _Optional[int] = ..., data_total: _Optional[int] = ..., data_processed: _Optional[int] = ..., data_remaining: _Optional[int] = ..., dirty_rate: _Optional[int] = ..., expected_downtime_ms: _Optional[int] = ..., downtime_ms: _Optional[int] = ..., memory_bps: _Optional[int] = ..., phase: _Optional[str] = ...) -> None: ...

class AbortMigrationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AbortMigrationJobResponse(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    def __init__(self, cancelled: _Optional[bool] = ...) -> None: ...

class GetHostResourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostResources(_message.Message):
    __slots__ = ("memory_total_mib", "memory_available_mib", "domains_memory_mib", "domains_running", "virtual_networks", "network_filters", "network_filters_known")
    MEMORY_TOTAL_MIB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_MIB_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_NETWORKS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FILTERS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FILTERS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    memory_total_mib: int
    memory_available_mib: int
    domains_memory_mib: int
    domains_running: int
    virtual_networks: _containers.RepeatedScalarFieldContainer[str]
    network_filters: _containers.RepeatedScalarFieldContainer[str]
    network_filters_known: bool
    def __init__(self, memory_total_mib: _Optional[int] = ..., memory_available_mib: _Optional[int] = ..., domains_memory_mib: _Optional[int] = ..., domains_running: _Optional[int] = ..., virtual_networks: _Optional[_Iterable[str]] = ..., network_filters: _Optional[_Iterable[str]] = ..., network_filters_known: _Optional[bool] = ...) -> None: ...
