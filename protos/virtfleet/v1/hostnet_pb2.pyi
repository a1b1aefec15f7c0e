from virtfleet.v1 import netstate_pb2 as _netstate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Ipv4Config(_message.Message):
    __slots__ = ("method", "address", "prefixlen", "gateway")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREFIXLEN_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    method: str
    address: str
    prefixlen: int
    gateway: str
    def __init__(self, method: _Optional[str] = ..., address: _Optional[str] = ..., prefixlen: _Optional[int] = ..., gateway: _Optional[str] = ...) -> None: ...

class NetworkAttachment(_message.Message):
    __slots__ = ("network", "nic", "vlan", "mtu", "bridged", "ipv4", "default_route")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    VLAN_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    BRIDGED_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ROUTE_FIELD_NUMBER: _ClassVar[int]
    network: str
    nic: str
    vlan: int
    mtu: int
    bridged: bool
    ipv4: Ipv4Config
    default_route: bool
    def __init__(self, network: _Optional[str] = ..., nic: _Optional[str] = ..., vlan: _Optional[int] = ..., mtu: _Optional[int] = ..., bridged: _Optional[bool] = ..., ipv4: _Optional[_Union[Ipv4Config, _Mapping]] = ..., default_route: _Optional[bool] = ...) -> None: ...

class Bond(_message.Message):
    __slots__ = ("name", "slaves", "mode", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLAVES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    slaves: _containers.RepeatedScalarFieldContainer[str]
    mode: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., slaves: _Optional[_Iterable[str]] = ..., mode: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HostNetworkConfig(_message.Message):
    __slots__ = ("networks", "bonds", "generation")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BONDS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    bonds: _containers.RepeatedCompositeFieldContainer[Bond]
    generation: int
    def __init__(self, networks: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ..., bonds: _Optional[_Iterable[_Union[Bond, _Mapping]]] = ..., generation: _Optional[int] = ...) -> None: ...

class SetupNetworksRequest(_message.Message):
    __slots__ = ("networks", "remove_networks", "bonds", "remove_bonds", "no_rollback", "connectivity_timeout_s", "dry_run")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BONDS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_BONDS_FIELD_NUMBER: _ClassVar[int]
    NO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    CONNECTIVITY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    remove_networks: _containers.RepeatedScalarFieldContainer[str]
    bonds: _containers.RepeatedCompositeFieldContainer[Bond]
    remove_bonds: _containers.RepeatedScalarFieldContainer[str]
    no_rollback: bool
    connectivity_timeout_s: int
    dry_run: bool
    def __init__(self, networks: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ..., remove_networks: _Optional[_Iterable[str]] = ..., bonds: _Optional[_Iterable[_Union[Bond, _Mapping]]] = ..., remove_bonds: _Optional[_Iterable[str]] = ..., no_rollback: _Optional[bool] = ..., connectivity_timeout_s: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class SetupNetworksResponse(_message.Message):
    __slots__ = ("steps", "change_id", "state", "config")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[str]
    change_id: str
    state: _netstate_pb2.NetworkState
    config: HostNetworkConfig
    def __init__(self, steps: _Optional[_Iterable[str]] = ..., change_id: _Optional[str] = ..., state: _Optional[_Union[_netstate_pb2.NetworkState, _Mapping]] = ..., config: _Optional[_Union[HostNetworkConfig, _Mapping]] = ...) -> None: ...

class CommitNetworksRequest(_message.Message):
    __slots__ = ("change_id",)
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    def __init__(self, change_id: _Optional[str] = ...) -> None: ...

class CommitNetworksResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: HostNetworkConfig
    def __init__(self, config: _Optional[_Union[HostNetworkConfig, _Mapping]] = ...) -> None: ...

class GetNetworkConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
