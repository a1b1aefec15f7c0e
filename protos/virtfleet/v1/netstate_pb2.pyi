import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Address(_message.Message):
    __slots__ = ("family", "address", "prefixlen", "broadcast", "scope", "label", "flags", "valid_lft", "preferred_lft")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREFIXLEN_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    VALID_LFT_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_LFT_FIELD_NUMBER: _ClassVar[int]
    family: str
    address: str
    prefixlen: int
    broadcast: str
    scope: str
    label: str
    flags: _containers.RepeatedScalarFieldContainer[str]
    valid_lft: int
    preferred_lft: int
    def __init__(self, family: _Optional[str] = ..., address: _Optional[str] = ..., prefixlen: _Optional[int] = ..., broadcast: _Optional[str] = ..., scope: _Optional[str] = ..., label: _Optional[str] = ..., flags: _Optional[_Iterable[str]] = ..., valid_lft: _Optional[int] = ..., preferred_lft: _Optional[int] = ...) -> None: ...

class BridgeInfo(_message.Message):
    __slots__ = ("bridge_id", "stp_enabled", "ports")
    BRIDGE_ID_FIELD_NUMBER: _ClassVar[int]
    STP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    bridge_id: str
    stp_enabled: bool
    ports: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bridge_id: _Optional[str] = ..., stp_enabled: _Optional[bool] = ..., ports: _Optional[_Iterable[str]] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("index", "name", "kind", "mac", "broadcast", "mtu", "oper_state", "flags", "master", "qdisc", "txqlen", "link_type", "link_index", "link_netnsid", "link_netns", "group", "addresses", "bridge", "macvtap_mode", "vlan_id", "parent", "permaddr")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    OPER_STATE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    MASTER_FIELD_NUMBER: _ClassVar[int]
    QDISC_FIELD_NUMBER: _ClassVar[int]
    TXQLEN_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LINK_INDEX_FIELD_NUMBER: _ClassVar[int]
    LINK_NETNSID_FIELD_NUMBER: _ClassVar[int]
    LINK_NETNS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    MACVTAP_MODE_FIELD_NUMBER: _ClassVar[int]
    VLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PERMADDR_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    kind: str
    mac: str
    broadcast: str
    mtu: int
    oper_state: str
    flags: _containers.RepeatedScalarFieldContainer[str]
    master: str
    qdisc: str
    txqlen: int
    link_type: str
    link_index: int
    link_netnsid: int
    link_netns: str
    group: str
    addresses: _containers.RepeatedCompositeFieldContainer[Address]
    bridge: BridgeInfo
    macvtap_mode: str
    vlan_id: int
    parent: str
    permaddr: str
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., mac: _Optional[str] = ..., broadcast: _Optional[str] = ..., mtu: _Optional[int] = ..., oper_state: _Optional[str] = ..., flags: _Optional[_Iterable[str]] = ..., master: _Optional[str] = ..., qdisc: _Optional[str] = ..., txqlen: _Optional[int] = ..., link_type: _Optional[str] = ..., link_index: _Optional[int] = ..., link_netnsid: _Optional[int] = ..., link_netns: _Optional[str] = ..., group: _Optional[str] = ..., addresses: _Optional[_Iterable[_Union[Address, _Mapping]]] = ..., bridge: _Optional[_Union[BridgeInfo, _Mapping]] = ..., macvtap_mode: _Optional[str] = ..., vlan_id: _Optional[int] = ..., parent: _Optional[str] = ..., permaddr: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("family", "destination", "gateway", "device", "metric", "scope", "protocol", "source")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    family: str
    destination: str
    gateway: str
    device: str
    metric: int
    scope: str
    protocol: str
    source: str
    def __init__(self, family: _Optional[str] = ..., destination: _Optional[str] = ..., gateway: _Optional[str] = ..., device: _Optional[str] = ..., metric: _Optional[int] = ..., scope: _Optional[str] = ..., protocol: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class NetworkState(_message.Message):
    __slots__ = ("hostname", "links", "routes", "taken_at")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    links: _containers.RepeatedCompositeFieldContainer[Link]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    taken_at: _timestamp_pb2.Timestamp
    def __init__(self, hostname: _Optional[str] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NetworkStateDelta(_message.Message):
    __slots__ = ("changed_links", "removed_link_indexes", "added_routes", "removed_routes", "hostname", "taken_at")
    CHANGED_LINKS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_LINK_INDEXES_FIELD_NUMBER: _ClassVar[int]
    ADDED_ROUTES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ROUTES_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    changed_links: _containers.RepeatedCompositeFieldContainer[Link]
    removed_link_indexes: _containers.RepeatedScalarFieldContainer[int]
    added_routes: _containers.RepeatedCompositeFieldContainer[Route]
    removed_routes: _containers.RepeatedCompositeFieldContainer[Route]
    hostname: str
    taken_at: _timestamp_pb2.Timestamp
    def __init__(self, changed_links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., removed_link_indexes: _Optional[_Iterable[int]] = ..., added_routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., removed_routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., hostname: _Optional[str] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
