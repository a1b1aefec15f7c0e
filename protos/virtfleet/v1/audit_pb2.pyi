import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Finding(_message.Message):
    __slots__ = ("id", "category", "severity", "host", "object", "expected", "found", "fix", "fixable")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    FIXABLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    category: str
    severity: str
    host: str
    object: str
    expected: str
    found: str
    fix: str
    fixable: bool
    def __init__(self, id: _Optional[str] = ..., category: _Optional[str] = ..., severity: _Optional[str] = ..., host: _Optional[str] = ..., object: _Optional[str] = ..., expected: _Optional[str] = ..., found: _Optional[str] = ..., fix: _Optional[str] = ..., fixable: _Optional[bool] = ...) -> None: ...

class RunAuditRequest(_message.Message):
    __slots__ = ("host", "category")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    host: str
    category: str
    def __init__(self, host: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class ListFindingsRequest(_message.Message):
    __slots__ = ("host", "category")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    host: str
    category: str
    def __init__(self, host: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class AuditReport(_message.Message):
    __slots__ = ("findings", "ran_at", "duration_s", "hosts", "total")
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    RAN_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    ran_at: _timestamp_pb2.Timestamp
    duration_s: float
    hosts: int
    total: int
    def __init__(self, findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., ran_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_s: _Optional[float] = ..., hosts: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class FixFindingRequest(_message.Message):
    __slots__ = ("id", "plan")
    ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    id: str
    plan: bool
    def __init__(self, id: _Optional[str] = ..., plan: _Optional[bool] = ...) -> None: ...

class FixFindingResponse(_message.Message):
    __slots__ = ("finding", "steps", "applied", "remaining")
    FINDING_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    finding: Finding
    steps: _containers.RepeatedScalarFieldContainer[str]
    applied: bool
    remaining: _containers.RepeatedCompositeFieldContainer[Finding]
    def __init__(self, finding: _Optional[_Union[Finding, _Mapping]] = ..., steps: _Optional[_Iterable[str]] = ..., applied: _Optional[bool] = ..., remaining: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ...) -> None: ...
