"""The failures a caller can act on, one class each, shared by the manager and the agent.

Each class carries the one gRPC status code it maps to (virtfleet/rpc.py turns an
error into a status and a status back into an error), so no code anywhere decides a
status by looking at a message, and no status is ever patched onto an instance.
"""
from __future__ import annotations

import grpc


SHOWN_MAX = 64


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """A value as an error message echoes it: repr, cut to `limit` characters.

    A message echoing a whole 1 MiB value would overflow the status trailer and the
    caller would see RESOURCE_EXHAUSTED instead of the field that was wrong.
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class VirtfleetError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VirtfleetError):
    """The request is wrong; `field` is its path in the request (`nics[2].virtualport.managerid`)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description

    def under(self, prefix: str) -> "InvalidArgument":
        """The same violation seen from a request that holds this one at `prefix`."""
        if not prefix:
            return self
        return InvalidArgument(f"{prefix}.{self.field}" if self.field else prefix, self.description)


class NotFound(VirtfleetError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(VirtfleetError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(VirtfleetError):
    """Well formed, but the system is not in a state that allows it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(VirtfleetError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Aborted(VirtfleetError):
    """The change was tried and undone: the host or database is as it was before."""

    code = grpc.StatusCode.ABORTED


class Unimplemented(VirtfleetError):
    """This driver or kernel cannot do it at all."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Unavailable(VirtfleetError):
    """A peer (agent, hypervisor, database) cannot be reached; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(VirtfleetError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class PermissionDenied(VirtfleetError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Internal(VirtfleetError):
    code = grpc.StatusCode.INTERNAL


BY_CODE: dict[grpc.StatusCode, type[VirtfleetError]] = {
    cls.code: cls
    for cls in (NotFound, AlreadyExists, FailedPrecondition, ResourceExhausted, Aborted, Unimplemented,
                Unavailable, DeadlineExceeded, PermissionDenied, Internal)
}
