import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RevokeHostCertificateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeHostCertificateResponse(_message.Message):
    __slots__ = ("fingerprint",)
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    def __init__(self, fingerprint: _Optional[str] = ...) -> None: ...

class RotateCaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPkiStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CertificateAuthorityStatus(_message.Message):
    __slots__ = ("fingerprint", "not_before", "not_after", "state")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    state: str
    def __init__(self, fingerprint: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ...) -> None: ...

class CertificateStatus(_message.Message):
    __slots__ = ("name", "fingerprint", "issuer_fingerprint", "not_before", "not_after", "renew_at", "renew_due", "pin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    RENEW_AT_FIELD_NUMBER: _ClassVar[int]
    RENEW_DUE_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    fingerprint: str
    issuer_fingerprint: str
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    renew_at: _timestamp_pb2.Timestamp
    renew_due: bool
    pin: str
    def __init__(self, name: _Optional[str] = ..., fingerprint: _Optional[str] = ..., issuer_fingerprint: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., renew_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., renew_due: _Optional[bool] = ..., pin: _Optional[str] = ...) -> None: ...

class PkiStatus(_message.Message):
    __slots__ = ("cas", "hosts", "manager", "trust_generation")
    CAS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    MANAGER_FIELD_NUMBER: _ClassVar[int]
    TRUST_GENERATION_FIELD_NUMBER: _ClassVar[int]
    cas: _containers.RepeatedCompositeFieldContainer[CertificateAuthorityStatus]
    hosts: _containers.RepeatedCompositeFieldContainer[CertificateStatus]
    manager: CertificateStatus
    trust_generation: int
    def __init__(self, cas: _Optional[_Iterable[_Union[CertificateAuthorityStatus, _Mapping]]] = ..., hosts: _Optional[_Iterable[_Union[CertificateStatus, _Mapping]]] = ..., manager: _Optional[_Union[CertificateStatus, _Mapping]] = ..., trust_generation: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token", "csr_pem")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    token: str
    csr_pem: bytes
    def __init__(self, token: _Optional[str] = ..., csr_pem: _Optional[bytes] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("host", "certificate_pem", "ca_certificate_pem")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    host: str
    certificate_pem: bytes
    ca_certificate_pem: bytes
    def __init__(self, host: _Optional[str] = ..., certificate_pem: _Optional[bytes] = ..., ca_certificate_pem: _Optional[bytes] = ...) -> None: ...
