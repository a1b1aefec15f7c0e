import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from virtfleet.v1 import hostnet_pb2 as _hostnet_pb2
from virtfleet.v1 import netstate_pb2 as _netstate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Host(_message.Message):
    __slots__ = ("name", "address", "endpoint", "datacenter", "cluster", "status", "cert_fingerprint", "enrolled_at", "last_report_at", "status_reason", "nic_labels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CERT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    NIC_LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    endpoint: str
    datacenter: str
    cluster: str
    status: str
    cert_fingerprint: str
    enrolled_at: _timestamp_pb2.Timestamp
    last_report_at: _timestamp_pb2.Timestamp
    status_reason: str
    nic_labels: _containers.RepeatedCompositeFieldContainer[NicLabel]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., endpoint: _Optional[str] = ..., datacenter: _Optional[str] = ..., cluster: _Optional[str] = ..., status: _Optional[str] = ..., cert_fingerprint: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_report_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_reason: _Optional[str] = ..., nic_labels: _Optional[_Iterable[_Union[NicLabel, _Mapping]]] = ...) -> None: ...

class NicLabel(_message.Message):
    __slots__ = ("nic", "label")
    NIC_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    nic: str
    label: str
    def __init__(self, nic: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class EnrollHostRequest(_message.Message):
    __slots__ = ("name", "address", "endpoint", "cluster", "csr_pem", "nic_labels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    NIC_LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    endpoint: str
    cluster: str
    csr_pem: bytes
    nic_labels: _containers.RepeatedCompositeFieldContainer[NicLabel]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., endpoint: _Optional[str] = ..., cluster: _Optional[str] = ..., csr_pem: _Optional[bytes] = ..., nic_labels: _Optional[_Iterable[_Union[NicLabel, _Mapping]]] = ...) -> None: ...

class EnrollHostResponse(_message.Message):
    __slots__ = ("host", "certificate_pem", "ca_certificate_pem", "enroll_token", "token_expires_at", "ca_fingerprint", "enroll_endpoint")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    ENROLL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ENROLL_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    host: Host
    certificate_pem: bytes
    ca_certificate_pem: bytes
    enroll_token: str
    token_expires_at: _timestamp_pb2.Timestamp
    ca_fingerprint: str
    enroll_endpoint: str
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., certificate_pem: _Optional[bytes] = ..., ca_certificate_pem: _Optional[bytes] = ..., enroll_token: _Optional[str] = ..., token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ca_fingerprint: _Optional[str] = ..., enroll_endpoint: _Optional[str] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteHostRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteHostResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHostNetworkReportRequest(_message.Message):
    __slots__ = ("name", "cached")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    name: str
    cached: bool
    def __init__(self, name: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class HostNetworkReport(_message.Message):
    __slots__ = ("host", "state", "reported_at", "sequence")
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    state: _netstate_pb2.NetworkState
    reported_at: _timestamp_pb2.Timestamp
    sequence: int
    def __init__(self, host: _Optional[str] = ..., state: _Optional[_Union[_netstate_pb2.NetworkState, _Mapping]] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class SetupHostManagementNetworkRequest(_message.Message):
    __slots__ = ("name", "nic", "dry_run")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    name: str
    nic: str
    dry_run: bool
    def __init__(self, name: _Optional[str] = ..., nic: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class SetupHostManagementNetworkResponse(_message.Message):
    __slots__ = ("changed", "steps", "report")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    steps: _containers.RepeatedScalarFieldContainer[str]
    report: HostNetworkReport
    def __init__(self, changed: _Optional[bool] = ..., steps: _Optional[_Iterable[str]] = ..., report: _Optional[_Union[HostNetworkReport, _Mapping]] = ...) -> None: ...

class LogicalNetwork(_message.Message):
    __slots__ = ("name", "datacenter", "vlan", "mtu", "vm_network", "description", "labels", "clusters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    VM_NETWORK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    vlan: int
    mtu: int
    vm_network: bool
    description: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    clusters: _containers.RepeatedCompositeFieldContainer[NetworkCluster]
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ..., vlan: _Optional[int] = ..., mtu: _Optional[int] = ..., vm_network: _Optional[bool] = ..., description: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., clusters: _Optional[_Iterable[_Union[NetworkCluster, _Mapping]]] = ...) -> None: ...

class NetworkCluster(_message.Message):
    __slots__ = ("cluster", "required", "migration")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    required: bool
    migration: bool
    def __init__(self, cluster: _Optional[str] = ..., required: _Optional[bool] = ..., migration: _Optional[bool] = ...) -> None: ...

class CreateNetworkRequest(_message.Message):
    __slots__ = ("network", "no_vm_network")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NO_VM_NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: LogicalNetwork
    no_vm_network: bool
    def __init__(self, network: _Optional[_Union[LogicalNetwork, _Mapping]] = ..., no_vm_network: _Optional[bool] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[LogicalNetwork]
    def __init__(self, networks: _Optional[_Iterable[_Union[LogicalNetwork, _Mapping]]] = ...) -> None: ...

class GetNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostAttachment(_message.Message):
    __slots__ = ("network", "nic", "ipv4", "default_route")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ROUTE_FIELD_NUMBER: _ClassVar[int]
    network: str
    nic: str
    ipv4: _hostnet_pb2.Ipv4Config
    default_route: bool
    def __init__(self, network: _Optional[str] = ..., nic: _Optional[str] = ..., ipv4: _Optional[_Union[_hostnet_pb2.Ipv4Config, _Mapping]] = ..., default_route: _Optional[bool] = ...) -> None: ...

class SetupHostNetworksRequest(_message.Message):
    __slots__ = ("host", "attach", "detach", "bonds", "remove_bonds", "plan", "connectivity_timeout_s")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    BONDS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_BONDS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    host: str
    attach: _containers.RepeatedCompositeFieldContainer[HostAttachment]
    detach: _containers.RepeatedScalarFieldContainer[str]
    bonds: _containers.RepeatedCompositeFieldContainer[_hostnet_pb2.Bond]
    remove_bonds: _containers.RepeatedScalarFieldContainer[str]
    plan: bool
    connectivity_timeout_s: int
    def __init__(self, host: _Optional[str] = ..., attach: _Optional[_Iterable[_Union[HostAttachment, _Mapping]]] = ..., detach: _Optional[_Iterable[str]] = ..., bonds: _Optional[_Iterable[_Union[_hostnet_pb2.Bond, _Mapping]]] = ..., remove_bonds: _Optional[_Iterable[str]] = ..., plan: _Optional[bool] = ..., connectivity_timeout_s: _Optional[int] = ...) -> None: ...

class SetupHostNetworksResponse(_message.Message):
    __slots__ = ("steps", "applied", "view")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[str]
    applied: bool
    view: HostNetworksView
    def __init__(self, steps: _Optional[_Iterable[str]] = ..., applied: _Optional[bool] = ..., view: _Optional[_Union[HostNetworksView, _Mapping]] = ...) -> None: ...

class GetHostNetworksRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class Difference(_message.Message):
    __slots__ = ("field", "expected", "found")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    field: str
    expected: str
    found: str
    def __init__(self, field: _Optional[str] = ..., expected: _Optional[str] = ..., found: _Optional[str] = ...) -> None: ...

class NetworkSyncStatus(_message.Message):
    __slots__ = ("network", "nic", "in_sync", "differences", "desired")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    network: str
    nic: str
    in_sync: bool
    differences: _containers.RepeatedCompositeFieldContainer[Difference]
    desired: HostAttachment
    def __init__(self, network: _Optional[str] = ..., nic: _Optional[str] = ..., in_sync: _Optional[bool] = ..., differences: _Optional[_Iterable[_Union[Difference, _Mapping]]] = ..., desired: _Optional[_Union[HostAttachment, _Mapping]] = ...) -> None: ...

class HostNetworksView(_message.Message):
    __slots__ = ("host", "networks", "bonds")
    HOST_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BONDS_FIELD_NUMBER: _ClassVar[int]
    host: str
    networks: _containers.RepeatedCompositeFieldContainer[NetworkSyncStatus]
    bonds: _containers.RepeatedCompositeFieldContainer[_hostnet_pb2.Bond]
    def __init__(self, host: _Optional[str] = ..., networks: _Optional[_Iterable[_Union[NetworkSyncStatus, _Mapping]]] = ..., bonds: _Optional[_Iterable[_Union[_hostnet_pb2.Bond, _Mapping]]] = ...) -> None: ...

class AttachNetworkToClusterRequest(_message.Message):
    __slots__ = ("network", "cluster", "required", "migration")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    network: str
    cluster: str
    required: bool
    migration: bool
    def __init__(self, network: _Optional[str] = ..., cluster: _Optional[str] = ..., required: _Optional[bool] = ..., migration: _Optional[bool] = ...) -> None: ...

class DetachNetworkFromClusterRequest(_message.Message):
    __slots__ = ("network", "cluster")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    network: str
    cluster: str
    def __init__(self, network: _Optional[str] = ..., cluster: _Optional[str] = ...) -> None: ...

class LabelNetworkRequest(_message.Message):
    __slots__ = ("network", "label")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    network: str
    label: str
    def __init__(self, network: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class UnlabelNetworkRequest(_message.Message):
    __slots__ = ("network", "label")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    network: str
    label: str
    def __init__(self, network: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class LabelHostNicRequest(_message.Message):
    __slots__ = ("host", "nic", "label")
    HOST_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    host: str
    nic: str
    label: str
    def __init__(self, host: _Optional[str] = ..., nic: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class UnlabelHostNicRequest(_message.Message):
    __slots__ = ("host", "nic", "label")
    HOST_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    host: str
    nic: str
    label: str
    def __init__(self, host: _Optional[str] = ..., nic: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class HostLabelChange(_message.Message):
    __slots__ = ("host", "attached", "detached", "applied", "error", "skipped")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    host: str
    attached: _containers.RepeatedScalarFieldContainer[str]
    detached: _containers.RepeatedScalarFieldContainer[str]
    applied: bool
    error: str
    skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[str] = ..., attached: _Optional[_Iterable[str]] = ..., detached: _Optional[_Iterable[str]] = ..., applied: _Optional[bool] = ..., error: _Optional[str] = ..., skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class LabelOutcome(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostLabelChange]
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostLabelChange, _Mapping]]] = ...) -> None: ...

class SetHostMaintenanceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MaintenanceProgress(_message.Message):
    __slots__ = ("host", "vm", "destination", "state", "message", "remaining")
    HOST_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    host: str
    vm: str
    destination: str
    state: str
    message: str
    remaining: int
    def __init__(self, host: _Optional[str] = ..., vm: _Optional[str] = ..., destination: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., remaining: _Optional[int] = ...) -> None: ...

class ActivateHostRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
