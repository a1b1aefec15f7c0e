from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MacRange(_message.Message):
    __slots__ = ("first", "last", "count")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    first: str
    last: str
    count: int
    def __init__(self, first: _Optional[str] = ..., last: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class MacPoolUsage(_message.Message):
    __slots__ = ("total", "used", "free", "custom")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    total: int
    used: int
    free: int
    custom: int
    def __init__(self, total: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ..., custom: _Optional[int] = ...) -> None: ...

class MacPool(_message.Message):
    __slots__ = ("name", "datacenter", "ranges", "allow_duplicates", "is_default", "usage", "clusters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    ranges: _containers.RepeatedCompositeFieldContainer[MacRange]
    allow_duplicates: bool
    is_default: bool
    usage: MacPoolUsage
    clusters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ..., ranges: _Optional[_Iterable[_Union[MacRange, _Mapping]]] = ..., allow_duplicates: _Optional[bool] = ..., is_default: _Optional[bool] = ..., usage: _Optional[_Union[MacPoolUsage, _Mapping]] = ..., clusters: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateMacPoolRequest(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: MacPool
    def __init__(self, pool: _Optional[_Union[MacPool, _Mapping]] = ...) -> None: ...

class ListMacPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMacPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[MacPool]
    def __init__(self, pools: _Optional[_Iterable[_Union[MacPool, _Mapping]]] = ...) -> None: ...

class GetMacPoolRequest(_message.Message):
    __slots__ = ("name", "datacenter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ...) -> None: ...

class DeleteMacPoolRequest(_message.Message):
    __slots__ = ("name", "datacenter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ...) -> None: ...

class DeleteMacPoolResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MacPoolRangeRequest(_message.Message):
    __slots__ = ("name", "datacenter", "range")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datacenter: str
    range: MacRange
    def __init__(self, name: _Optional[str] = ..., datacenter: _Optional[str] = ..., range: _Optional[_Union[MacRange, _Mapping]] = ...) -> None: ...

class SetClusterMacPoolRequest(_message.Message):
    __slots__ = ("cluster", "mac_pool")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    MAC_POOL_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    mac_pool: str
    def __init__(self, cluster: _Optional[str] = ..., mac_pool: _Optional[str] = ...) -> None: ...

class SetClusterMacPoolResponse(_message.Message):
    __slots__ = ("pool", "moved_macs")
    POOL_FIELD_NUMBER: _ClassVar[int]
    MOVED_MACS_FIELD_NUMBER: _ClassVar[int]
    pool: MacPool
    moved_macs: int
    def __init__(self, pool: _Optional[_Union[MacPool, _Mapping]] = ..., moved_macs: _Optional[int] = ...) -> None: ...
