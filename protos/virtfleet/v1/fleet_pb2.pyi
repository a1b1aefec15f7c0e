import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from virtfleet.v1 import netstate_pb2 as _netstate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Host(_message.Message):
    __slots__ = ("name", "address", "endpoint", "datacenter", "cluster", "status", "cert_fingerprint", "enrolled_at", "last_report_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CERT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    endpoint: str
    datacenter: str
    cluster: str
    status: str
    cert_fingerprint: str
    enrolled_at: _timestamp_pb2.Timestamp
    last_report_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., endpoint: _Optional[str] = ..., datacenter: _Optional[str] = ..., cluster: _Optional[str] = ..., status: _Optional[str] = ..., cert_fingerprint: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_report_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnrollHostRequest(_message.Message):
    __slots__ = ("name", "address", "endpoint", "cluster", "csr_pem")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    endpoint: str
    cluster: str
    csr_pem: bytes
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., endpoint: _Optional[str] = ..., cluster: _Optional[str] = ..., csr_pem: _Optional[bytes] = ...) -> None: ...

class EnrollHostResponse(_message.Message):
    __slots__ = ("host", "certificate_pem", "ca_certificate_pem")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    host: Host
    certificate_pem: bytes
    ca_certificate_pem: bytes
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., certificate_pem: _Optional[bytes] = ..., ca_certificate_pem: _Optional[bytes] = ...) -> None: ...

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
