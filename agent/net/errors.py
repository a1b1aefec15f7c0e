"""Failures of host network changes, one class per thing a caller can act on.

Each maps to one gRPC status code, so the service layer translates without
inspecting messages: InvalidArgument -> INVALID_ARGUMENT (with the field as a
`google.rpc.BadRequest` field violation), FailedPrecondition ->
FAILED_PRECONDITION, ApplyFailed -> ABORTED (the host was left as it was).
"""

from __future__ import annotations


class NetError(Exception):
    """Common base so the service layer can catch every host-network failure at once."""


class InvalidArgument(NetError):
    """The request itself is wrong; retrying it unchanged cannot succeed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class FailedPrecondition(NetError):
    """The request is well formed but the host is not in a state that allows it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApplyFailed(NetError):
    """The kernel refused a step or the result did not verify; the host was rolled back.

    `diff` says, line by line, how the host differed from what was asked, so an
    admin can see why without reading agent logs.
    """

    def __init__(self, message: str, diff: str = "") -> None:
        super().__init__(message if not diff else f"{message}\n{diff}")
        self.message = message
        self.diff = diff
