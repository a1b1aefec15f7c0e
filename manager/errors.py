"""Failures a user can act on, each mapped to one gRPC status code.

Services raise these; the API layer turns them into statuses, with
`google.rpc.BadRequest` field violations for invalid arguments so any client
can show which field was wrong.
"""
from __future__ import annotations

import grpc


class VirtfleetError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VirtfleetError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class NotFound(VirtfleetError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(VirtfleetError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(VirtfleetError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(VirtfleetError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(VirtfleetError):
    code = grpc.StatusCode.UNAVAILABLE


class Aborted(VirtfleetError):
    code = grpc.StatusCode.ABORTED
