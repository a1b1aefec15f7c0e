from virtfleet.v1 import hostnet_pb2 as _hostnet_pb2
from virtfleet.v1 import netstate_pb2 as _netstate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("hostname", "agent_version", "kernel_release", "kernel_features", "nics")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    KERNEL_RELEASE_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FEATURES_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    agent_version: str
    kernel_release: str
    kernel_features: _containers.RepeatedScalarFieldContainer[str]
    nics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hostname: _Optional[str] = ..., agent_version: _Optional[str] = ..., kernel_release: _Optional[str] = ..., kernel_features: _Optional[_Iterable[str]] = ..., nics: _Optional[_Iterable[str]] = ...) -> None: ...

class GetNetworkStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchNetworkStateRequest(_message.Message):
    __slots__ = ("resume_after", "epoch", "heartbeat_s")
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_S_FIELD_NUMBER: _ClassVar[int]
    resume_after: int
    epoch: str
    heartbeat_s: int
    def __init__(self, resume_after: _Optional[int] = ..., epoch: _Optional[str] = ..., heartbeat_s: _Optional[int] = ...) -> None: ...

class NetworkStateEvent(_message.Message):
    __slots__ = ("sequence", "state", "delta", "epoch", "config_generation")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CONFIG_GENERATION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    state: _netstate_pb2.NetworkState
    delta: _netstate_pb2.NetworkStateDelta
    epoch: str
    config_generation: int
    def __init__(self, sequence: _Optional[int] = ..., state: _Optional[_Union[_netstate_pb2.NetworkState, _Mapping]] = ..., delta: _Optional[_Union[_netstate_pb2.NetworkStateDelta, _Mapping]] = ..., epoch: _Optional[str] = ..., config_generation: _Optional[int] = ...) -> None: ...

class SetupManagementNetworkRequest(_message.Message):
    __slots__ = ("nic", "bridge", "dry_run")
    NIC_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    nic: str
    bridge: str
    dry_run: bool
    def __init__(self, nic: _Optional[str] = ..., bridge: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class SetupManagementNetworkResponse(_message.Message):
    __slots__ = ("changed", "steps", "state")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    steps: _containers.RepeatedScalarFieldContainer[str]
    state: _netstate_pb2.NetworkState
    def __init__(self, changed: _Optional[bool] = ..., steps: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[_netstate_pb2.NetworkState, _Mapping]] = ...) -> None: ...

class PrepareRenewalRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PrepareRenewalResponse(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: bytes
    def __init__(self, csr_pem: _Optional[bytes] = ...) -> None: ...

class InstallCertificateRequest(_message.Message):
    __slots__ = ("cert_pem", "ca_bundle_pem")
    CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    cert_pem: bytes
    ca_bundle_pem: bytes
    def __init__(self, cert_pem: _Optional[bytes] = ..., ca_bundle_pem: _Optional[bytes] = ...) -> None: ...

class InstallCertificateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TrustBundleRequest(_message.Message):
    __slots__ = ("ca_bundle_pem",)
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    ca_bundle_pem: bytes
    def __init__(self, ca_bundle_pem: _Optional[bytes] = ...) -> None: ...

class TrustBundleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
