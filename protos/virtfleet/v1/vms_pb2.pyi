import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from virtfleet.v1 import vm_pb2 as _vm_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NicRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NIC_RULE_UNSPECIFIED: _ClassVar[NicRule]
    NIC_RULE_PCI_ORDER: _ClassVar[NicRule]
    NIC_RULE_NAME_ORDER: _ClassVar[NicRule]
    NIC_RULE_SNAPSHOT_NEW_MACS: _ClassVar[NicRule]
NIC_RULE_UNSPECIFIED: NicRule
NIC_RULE_PCI_ORDER: NicRule
NIC_RULE_NAME_ORDER: NicRule
NIC_RULE_SNAPSHOT_NEW_MACS: NicRule

class Nic(_message.Message):
    __slots__ = ("name", "network", "virtual_network", "direct_nic", "mode", "model", "mac", "pci_address", "host_device", "position", "qbg", "qbh", "unplugging", "guest_name", "guest_ips", "profile", "link_down", "profile_out_of_sync")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_NETWORK_FIELD_NUMBER: _ClassVar[int]
    DIRECT_NIC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    PCI_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOST_DEVICE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    QBG_FIELD_NUMBER: _ClassVar[int]
    QBH_FIELD_NUMBER: _ClassVar[int]
    UNPLUGGING_FIELD_NUMBER: _ClassVar[int]
    GUEST_NAME_FIELD_NUMBER: _ClassVar[int]
    GUEST_IPS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    LINK_DOWN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    name: str
    network: str
    virtual_network: str
    direct_nic: str
    mode: _vm_pb2.DirectMode
    model: str
    mac: str
    pci_address: str
    host_device: str
    position: int
    qbg: _vm_pb2.Virtualport8021Qbg
    qbh: _vm_pb2.Virtualport8021Qbh
    unplugging: bool
    guest_name: str
    guest_ips: _containers.RepeatedScalarFieldContainer[str]
    profile: str
    link_down: bool
    profile_out_of_sync: bool
    def __init__(self, name: _Optional[str] = ..., network: _Optional[str] = ..., virtual_network: _Optional[str] = ..., direct_nic: _Optional[str] = ..., mode: _Optional[_Union[_vm_pb2.DirectMode, str]] = ..., model: _Optional[str] = ..., mac: _Optional[str] = ..., pci_address: _Optional[str] = ..., host_device: _Optional[str] = ..., position: _Optional[int] = ..., qbg: _Optional[_Union[_vm_pb2.Virtualport8021Qbg, _Mapping]] = ..., qbh: _Optional[_Union[_vm_pb2.Virtualport8021Qbh, _Mapping]] = ..., unplugging: _Optional[bool] = ..., guest_name: _Optional[str] = ..., guest_ips: _Optional[_Iterable[str]] = ..., profile: _Optional[str] = ..., link_down: _Optional[bool] = ..., profile_out_of_sync: _Optional[bool] = ...) -> None: ...

class VirtualMachine(_message.Message):
    __slots__ = ("name", "cluster", "host", "state", "memory_mib", "vcpus", "source_kind", "source_name", "nic_rule", "nics", "created_at", "first_boot_at", "boot", "domain_type", "migrating_to")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    NIC_RULE_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_BOOT_AT_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    MIGRATING_TO_FIELD_NUMBER: _ClassVar[int]
    name: str
    cluster: str
    host: str
    state: str
    memory_mib: int
    vcpus: int
    source_kind: str
    source_name: str
    nic_rule: NicRule
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    created_at: _timestamp_pb2.Timestamp
    first_boot_at: _timestamp_pb2.Timestamp
    boot: _vm_pb2.BootSource
    domain_type: str
    migrating_to: str
    def __init__(self, name: _Optional[str] = ..., cluster: _Optional[str] = ..., host: _Optional[str] = ..., state: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., source_kind: _Optional[str] = ..., source_name: _Optional[str] = ..., nic_rule: _Optional[_Union[NicRule, str]] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_boot_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., boot: _Optional[_Union[_vm_pb2.BootSource, _Mapping]] = ..., domain_type: _Optional[str] = ..., migrating_to: _Optional[str] = ...) -> None: ...

class CreateVirtualMachineRequest(_message.Message):
    __slots__ = ("name", "cluster", "template", "snapshot", "memory_mib", "vcpus", "nics", "start", "host", "boot", "domain_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    cluster: str
    template: str
    snapshot: str
    memory_mib: int
    vcpus: int
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    start: bool
    host: str
    boot: _vm_pb2.BootSource
    domain_type: str
    def __init__(self, name: _Optional[str] = ..., cluster: _Optional[str] = ..., template: _Optional[str] = ..., snapshot: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., start: _Optional[bool] = ..., host: _Optional[str] = ..., boot: _Optional[_Union[_vm_pb2.BootSource, _Mapping]] = ..., domain_type: _Optional[str] = ...) -> None: ...

class CreateVirtualMachinesRequest(_message.Message):
    __slots__ = ("name", "count", "cluster", "template", "snapshot", "batch_size", "start", "resume")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    cluster: str
    template: str
    snapshot: str
    batch_size: int
    start: bool
    resume: bool
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ..., cluster: _Optional[str] = ..., template: _Optional[str] = ..., snapshot: _Optional[str] = ..., batch_size: _Optional[int] = ..., start: _Optional[bool] = ..., resume: _Optional[bool] = ...) -> None: ...

class CreateVirtualMachinesProgress(_message.Message):
    __slots__ = ("total", "created", "started", "vms", "rule")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    total: int
    created: int
    started: int
    vms: _containers.RepeatedScalarFieldContainer[str]
    rule: NicRule
    def __init__(self, total: _Optional[int] = ..., created: _Optional[int] = ..., started: _Optional[int] = ..., vms: _Optional[_Iterable[str]] = ..., rule: _Optional[_Union[NicRule, str]] = ...) -> None: ...

class ListVirtualMachinesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVirtualMachinesResponse(_message.Message):
    __slots__ = ("vms",)
    VMS_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VirtualMachine]
    def __init__(self, vms: _Optional[_Iterable[_Union[VirtualMachine, _Mapping]]] = ...) -> None: ...

class GetVirtualMachineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StartVirtualMachineRequest(_message.Message):
    __slots__ = ("name", "host", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class StopVirtualMachineRequest(_message.Message):
    __slots__ = ("name", "force", "timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    timeout_s: int
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ..., timeout_s: _Optional[int] = ...) -> None: ...

class DeleteVirtualMachineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteVirtualMachineResponse(_message.Message):
    __slots__ = ("released_macs",)
    RELEASED_MACS_FIELD_NUMBER: _ClassVar[int]
    released_macs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, released_macs: _Optional[_Iterable[str]] = ...) -> None: ...

class AddNicRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: Nic
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[_Union[Nic, _Mapping]] = ...) -> None: ...

class RemoveNicRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: str
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[str] = ...) -> None: ...

class OrderMismatch(_message.Message):
    __slots__ = ("position", "field", "expected", "found")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    position: int
    field: str
    expected: str
    found: str
    def __init__(self, position: _Optional[int] = ..., field: _Optional[str] = ..., expected: _Optional[str] = ..., found: _Optional[str] = ...) -> None: ...

class CheckOrderRequest(_message.Message):
    __slots__ = ("vm", "guest")
    VM_FIELD_NUMBER: _ClassVar[int]
    GUEST_FIELD_NUMBER: _ClassVar[int]
    vm: str
    guest: bool
    def __init__(self, vm: _Optional[str] = ..., guest: _Optional[bool] = ...) -> None: ...

class CheckOrderResponse(_message.Message):
    __slots__ = ("vm", "source_kind", "source_name", "rule", "in_order", "mismatches", "expected", "actual")
    VM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    IN_ORDER_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    vm: str
    source_kind: str
    source_name: str
    rule: NicRule
    in_order: bool
    mismatches: _containers.RepeatedCompositeFieldContainer[OrderMismatch]
    expected: _containers.RepeatedCompositeFieldContainer[Nic]
    actual: _containers.RepeatedCompositeFieldContainer[Nic]
    def __init__(self, vm: _Optional[str] = ..., source_kind: _Optional[str] = ..., source_name: _Optional[str] = ..., rule: _Optional[_Union[NicRule, str]] = ..., in_order: _Optional[bool] = ..., mismatches: _Optional[_Iterable[_Union[OrderMismatch, _Mapping]]] = ..., expected: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., actual: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ...) -> None: ...

class SetNicLinkRequest(_message.Message):
    __slots__ = ("vm", "nic", "up")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: str
    up: bool
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[str] = ..., up: _Optional[bool] = ...) -> None: ...

class SyncNicsRequest(_message.Message):
    __slots__ = ("vm", "nic")
    VM_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    vm: str
    nic: str
    def __init__(self, vm: _Optional[str] = ..., nic: _Optional[str] = ...) -> None: ...

class NicSyncResult(_message.Message):
    __slots__ = ("nic", "applied_live", "needs_restart")
    NIC_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LIVE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_RESTART_FIELD_NUMBER: _ClassVar[int]
    nic: str
    applied_live: bool
    needs_restart: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nic: _Optional[str] = ..., applied_live: _Optional[bool] = ..., needs_restart: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncNicsResponse(_message.Message):
    __slots__ = ("vm", "results")
    VM_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    vm: VirtualMachine
    results: _containers.RepeatedCompositeFieldContainer[NicSyncResult]
    def __init__(self, vm: _Optional[_Union[VirtualMachine, _Mapping]] = ..., results: _Optional[_Iterable[_Union[NicSyncResult, _Mapping]]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "datacenter", "memory_mib", "vcpus", "source_vm", "nics", "created_at", "boot", "domain_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VM_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    memory_mib: int
    vcpus: int
    source_vm: str
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    created_at: _timestamp_pb2.Timestamp
    boot: _vm_pb2.BootSource
    domain_type: str
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., source_vm: _Optional[str] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., boot: _Optional[_Union[_vm_pb2.BootSource, _Mapping]] = ..., domain_type: _Optional[str] = ...) -> None: ...

class CreateTemplateRequest(_message.Message):
    __slots__ = ("name", "from_vm", "datacenter", "memory_mib", "vcpus", "nics", "boot", "domain_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_VM_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_vm: str
    datacenter: str
    memory_mib: int
    vcpus: int
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    boot: _vm_pb2.BootSource
    domain_type: str
    def __init__(self, name: _Optional[str] = ..., from_vm: _Optional[str] = ..., datacenter: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., boot: _Optional[_Union[_vm_pb2.BootSource, _Mapping]] = ..., domain_type: _Optional[str] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("name", "vm", "memory_mib", "vcpus", "nics", "created_at", "boot", "domain_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    vm: str
    memory_mib: int
    vcpus: int
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    created_at: _timestamp_pb2.Timestamp
    boot: _vm_pb2.BootSource
    domain_type: str
    def __init__(self, name: _Optional[str] = ..., vm: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., boot: _Optional[_Union[_vm_pb2.BootSource, _Mapping]] = ..., domain_type: _Optional[str] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("vm", "name")
    VM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    vm: str
    name: str
    def __init__(self, vm: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: str
    def __init__(self, vm: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MacChange(_message.Message):
    __slots__ = ("nic", "old_mac", "new_mac")
    NIC_FIELD_NUMBER: _ClassVar[int]
    OLD_MAC_FIELD_NUMBER: _ClassVar[int]
    NEW_MAC_FIELD_NUMBER: _ClassVar[int]
    nic: str
    old_mac: str
    new_mac: str
    def __init__(self, nic: _Optional[str] = ..., old_mac: _Optional[str] = ..., new_mac: _Optional[str] = ...) -> None: ...

class RestoreSnapshotRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RestoreSnapshotResponse(_message.Message):
    __slots__ = ("vm", "mac_changes")
    VM_FIELD_NUMBER: _ClassVar[int]
    MAC_CHANGES_FIELD_NUMBER: _ClassVar[int]
    vm: VirtualMachine
    mac_changes: _containers.RepeatedCompositeFieldContainer[MacChange]
    def __init__(self, vm: _Optional[_Union[VirtualMachine, _Mapping]] = ..., mac_changes: _Optional[_Iterable[_Union[MacChange, _Mapping]]] = ...) -> None: ...

class DeleteSnapshotRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSnapshotResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MigrateVirtualMachineRequest(_message.Message):
    __slots__ = ("name", "to", "max_downtime_ms", "bandwidth_mib_s", "auto_converge", "post_copy", "timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    AUTO_CONVERGE_FIELD_NUMBER: _ClassVar[int]
    POST_COPY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    to: str
    max_downtime_ms: int
    bandwidth_mib_s: int
    auto_converge: bool
    post_copy: bool
    timeout_s: int
    def __init__(self, name: _Optional[str] = ..., to: _Optional[str] = ..., max_downtime_ms: _Optional[int] = ..., bandwidth_mib_s: _Optional[int] = ..., auto_converge: _Optional[bool] = ..., post_copy: _Optional[bool] = ..., timeout_s: _Optional[int] = ...) -> None: ...

class MigrationProgress(_message.Message):
    __slots__ = ("vm", "source", "destination", "time_elapsed_ms", "data_total", "data_processed", "data_remaining", "dirty_rate", "expected_downtime_ms", "done", "downtime_ms", "phase")
    VM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TIME_ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    DATA_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DATA_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    DATA_REMAINING_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    vm: str
    source: str
    destination: str
    time_elapsed_ms: int
    data_total: int
    data_processed: int
    data_remaining: int
    dirty_rate: int
    expected_downtime_ms: int
    done: bool
    downtime_ms: int
    phase: str
    def __init__(self, vm: _Optional[str] = ..., source: _Optional[str] = ..., destination: _Optional[str] = ..., time_elapsed_ms: _Optional[int] = ..., data_total: _Optional[int] = ..., data_processed: _Optional[int] = ..., data_remaining: _Optional[int] = ..., dirty_rate: _Optional[int] = ..., expected_downtime_ms: _Optional[int] = ..., done: _Optional[bool] = ..., downtime_ms: _Optional[int] = ..., phase: _Optional[str] = ...) -> None: ...

class CancelMigrationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ExplainPlacementRequest(_message.Message):
    __slots__ = ("vm", "purpose")
    VM_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    vm: str
    purpose: str
    def __init__(self, vm: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class HostVerdict(_message.Message):
    __slots__ = ("host", "accepted", "reasons", "score", "free_memory_mib", "vm_count")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FREE_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    host: str
    accepted: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    score: float
    free_memory_mib: int
    vm_count: int
    def __init__(self, host: _Optional[str] = ..., accepted: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., score: _Optional[float] = ..., free_memory_mib: _Optional[int] = ..., vm_count: _Optional[int] = ...) -> None: ...

class PlacementExplanation(_message.Message):
    __slots__ = ("vm", "chosen", "hosts")
    VM_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    vm: str
    chosen: str
    hosts: _containers.RepeatedCompositeFieldContainer[HostVerdict]
    def __init__(self, vm: _Optional[str] = ..., chosen: _Optional[str] = ..., hosts: _Optional[_Iterable[_Union[HostVerdict, _Mapping]]] = ...) -> None: ...
