"""Failures of the VM runtime, one class per thing a caller can act on.

Each maps to one gRPC status code in agent/vm_server.py: InvalidArgument ->
INVALID_ARGUMENT (with the field as a google.rpc.BadRequest violation),
FailedPrecondition -> FAILED_PRECONDITION, NotFound -> NOT_FOUND,
Unsupported -> UNIMPLEMENTED, HypervisorUnavailable -> UNAVAILABLE.
"""
from __future__ import annotations


class VirtError(Exception):
    """Common base so the service layer catches every VM-runtime failure at once."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VirtError):
    """The request itself is wrong; `field` is its path in the request (e.g. spec.nics[1].qbg.managerid)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class FailedPrecondition(VirtError):
    """Well formed, but the host is not in a state that allows it (a device held, a VM running...)."""


class NotFound(VirtError):
    """The named VM, vNIC or virtual network does not exist on this host."""


class Unsupported(VirtError):
    """This hypervisor driver cannot do it (e.g. test:///default has no hot-plug)."""


class HypervisorUnavailable(VirtError):
    """libvirt cannot be reached; retrying later may succeed."""
