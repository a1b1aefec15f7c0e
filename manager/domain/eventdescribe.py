"""What an audit-trail row says of a fleet-API call: the object it concerns and a summary of the request.

Pure: a method name and its request message in, an `Described` out. The
object is what `virtfleet events --object KIND/NAME` finds: vNIC changes are
about their VM (`vm/web1` shows the VM's whole story), a snapshot or template
about itself. Methods of families not listed (added later, or unknown) still
get a row: the object then comes from the request's usual name fields.

The summary is the request as asked, with nothing secret in it: bytes fields
(CSRs, certificates, keys) and fields named like a secret (token, key, pem,
password) are replaced by their length and the start of their SHA-256, never
their content, so two rows can still be matched to the same certificate. Long
strings and lists are cut, so a row stays small whatever the request.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

STRING_MAX = 200         # characters of a string field kept
LIST_MAX = 20            # items of a repeated field kept
_SECRET = re.compile(r"(pem|csr|cert|key|token|secret|password|passphrase)", re.IGNORECASE)
_NOT_SECRET = re.compile(r"(fingerprint|_id|_ids)$")   # what identifies a secret is not one

# method (last part of the gRPC name) -> (object kind, request field path holding its name)
_OBJECTS: dict[str, tuple[str, str]] = {
    # hosts
    "EnrollHost": ("host", "name"),
    "DeleteHost": ("host", "name"),
    "GetHost": ("host", "name"),
    "GetHostNetworkReport": ("host", "name"),
    "SetupHostManagementNetwork": ("host", "name"),
    "SetupHostNetworks": ("host", "host"),
    "GetHostNetworks": ("host", "host"),
    # logical networks
    "CreateNetwork": ("network", "network.name"),
    "GetNetwork": ("network", "name"),
    "DeleteNetwork": ("network", "name"),
    "AttachNetworkToCluster": ("network", "network"),
    "DetachNetworkFromCluster": ("network", "network"),
    "LabelNetwork": ("network", "network"),
    "UnlabelNetwork": ("network", "network"),
    "LabelHostNic": ("host", "host"),
    "UnlabelHostNic": ("host", "host"),
    # VMs and their vNICs
    "CreateVirtualMachine": ("vm", "name"),
    "CreateVirtualMachines": ("vm", "name"),
    "GetVirtualMachine": ("vm", "name"),
    "StartVirtualMachine": ("vm", "name"),
    "StopVirtualMachine": ("vm", "name"),
    "DeleteVirtualMachine": ("vm", "name"),
    "AddNic": ("vm", "vm"),
    "RemoveNic": ("vm", "vm"),
    "CheckOrder": ("vm", "vm"),
    # templates and snapshots
    "CreateTemplate": ("template", "name"),
    "GetTemplate": ("template", "name"),
    "DeleteTemplate": ("template", "name"),
    "CreateSnapshot": ("snapshot", "name"),
    "GetSnapshot": ("snapshot", "name"),
    "RestoreSnapshot": ("snapshot", "name"),
    "DeleteSnapshot": ("snapshot", "name"),
    "ListSnapshots": ("vm", "vm"),
    # MAC pools
    "CreateMacPool": ("macpool", "pool.name"),
    "GetMacPool": ("macpool", "name"),
    "DeleteMacPool": ("macpool", "name"),
    "AddMacPoolRange": ("macpool", "name"),
    "RemoveMacPoolRange": ("macpool", "name"),
    "SetClusterMacPool": ("cluster", "cluster"),
    # audit
    "FixFinding": ("finding", "id"),
}

# A service's methods not listed above: the kind is the family, the name from the usual fields.
_SERVICE_KINDS = {"FleetService": "", "VmService": "vm", "MacPoolService": "macpool", "AuditService": "finding",
                  "AdminService": "admin", "PkiService": "pki", "EventService": "events"}
_NAME_FIELDS = ("name", "host", "vm", "cluster", "admin", "identity", "id")


@dataclass(frozen=True)
class Described:
    object_kind: str
    object_name: str
    summary: dict[str, Any] = field(default_factory=dict)


def split_method(method: str) -> tuple[str, str]:
    """"/virtfleet.v1.VmService/AddNic" -> ("VmService", "AddNic"); anything else -> ("", method)."""
    parts = method.strip("/").split("/")
    if len(parts) != 2:
        return "", method
    return parts[0].rsplit(".", 1)[-1], parts[1]


def describe(method: str, request: object) -> Described:
    """The object and summary of one call; a request that is not a message (a stream) has an empty summary."""
    service, name = split_method(method)
    if not isinstance(request, Message):
        return Described(_fallback_kind(service, name), "")
    summary = summarize(request)
    if name in _OBJECTS:
        kind, path = _OBJECTS[name]
        return Described(kind, str(_at_path(request, path) or ""), summary)
    for candidate in _NAME_FIELDS:
        value = _at_path(request, candidate)
        if isinstance(value, str) and value:
            return Described(_fallback_kind(service, name) or candidate, value, summary)
    return Described(_fallback_kind(service, name), "", summary)


def _fallback_kind(service: str, method: str) -> str:
    if service in _SERVICE_KINDS and _SERVICE_KINDS[service]:
        return _SERVICE_KINDS[service]
    for noun, kind in (("Host", "host"), ("Network", "network"), ("Admin", "admin"), ("Certificate", "pki"),
                       ("Ca", "pki")):
        if noun in method:
            return kind
    return ""


def _at_path(message: Message, path: str) -> object:
    value: object = message
    for part in path.split("."):
        if not isinstance(value, Message) or part not in value.DESCRIPTOR.fields_by_name:
            return None
        value = getattr(value, part)
    return value


def fingerprint(data: bytes | str) -> dict[str, Any]:
    """What a row may hold of a secret: how long it was and where its SHA-256 starts."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return {"length": len(raw), "sha256": hashlib.sha256(raw).hexdigest()[:16]}


def summarize(message: Message) -> dict[str, Any]:
    """The fields the caller set, recursively, with secrets fingerprinted and sizes bounded."""
    out: dict[str, Any] = {}
    for fd, value in message.ListFields():
        out[fd.name] = _field_value(fd, value)
    return out


def _is_secret(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_BYTES or (
        bool(_SECRET.search(fd.name)) and not _NOT_SECRET.search(fd.name))


def _field_value(fd: FieldDescriptor, value: Any) -> Any:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        items = sorted(value.items())
        shown = {str(k): _scalar(fd.message_type.fields_by_name["value"], v) for k, v in items[:LIST_MAX]}
        if len(items) > LIST_MAX:
            shown["…"] = f"{len(items) - LIST_MAX} more"
        return shown
    if fd.is_repeated:
        items = [_scalar(fd, v) for v in list(value)[:LIST_MAX]]
        if len(value) > LIST_MAX:
            items.append(f"… {len(value) - LIST_MAX} more")
        return items
    return _scalar(fd, value)


def _scalar(fd: FieldDescriptor, value: Any) -> Any:
    if isinstance(value, Message):
        return summarize(value)
    if _is_secret(fd):
        return fingerprint(value) if isinstance(value, (bytes, str)) else "(hidden)"
    if fd.enum_type is not None:
        enum_value = fd.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if isinstance(value, str) and len(value) > STRING_MAX:
        return value[:STRING_MAX] + f"… ({len(value)} characters)"
    return value
