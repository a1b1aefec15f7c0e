from virtfleet.v1 import vm_pb2 as _vm_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VnicProfile(_message.Message):
    __slots__ = ("name", "datacenter", "network", "qos", "filter", "port_mirroring", "isolated", "mtu_to_guest", "is_default", "generation", "vnics")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PORT_MIRRORING_FIELD_NUMBER: _ClassVar[int]
    ISOLATED_FIELD_NUMBER: _ClassVar[int]
    MTU_TO_GUEST_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    VNICS_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    network: str
    qos: _vm_pb2.Bandwidth
    filter: _vm_pb2.NetworkFilter
    port_mirroring: bool
    isolated: bool
    mtu_to_guest: bool
    is_default: bool
    generation: int
    vnics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ..., network: _Optional[str] = ..., qos: _Optional[_Union[_vm_pb2.Bandwidth, _Mapping]] = ..., filter: _Optional[_Union[_vm_pb2.NetworkFilter, _Mapping]] = ..., port_mirroring: _Optional[bool] = ..., isolated: _Optional[bool] = ..., mtu_to_guest: _Optional[bool] = ..., is_default: _Optional[bool] = ..., generation: _Optional[int] = ..., vnics: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateVnicProfileRequest(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: VnicProfile
    def __init__(self, profile: _Optional[_Union[VnicProfile, _Mapping]] = ...) -> None: ...

class ListVnicProfilesRequest(_message.Message):
    __slots__ = ("datacenter", "network")
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    datacenter: str
    network: str
    def __init__(self, datacenter: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class ListVnicProfilesResponse(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[VnicProfile]
    def __init__(self, profiles: _Optional[_Iterable[_Union[VnicProfile, _Mapping]]] = ...) -> None: ...

class GetVnicProfileRequest(_message.Message):
    __slots__ = ("name", "datacenter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ...) -> None: ...

class UpdateVnicProfileRequest(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: VnicProfile
    def __init__(self, profile: _Optional[_Union[VnicProfile, _Mapping]] = ...) -> None: ...

class DeleteVnicProfileRequest(_message.Message):
    __slots__ = ("name", "datacenter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ...) -> None: ...

class DeleteVnicProfileResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
