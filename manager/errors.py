"""The manager raises the shared error classes (virtfleet/errors.py): one hierarchy, one status mapping."""
from virtfleet.errors import (AlreadyExists, Aborted, FailedPrecondition, InvalidArgument, NotFound,
                              ResourceExhausted, Unavailable, VirtfleetError)

__all__ = ["AlreadyExists", "Aborted", "FailedPrecondition", "InvalidArgument", "NotFound", "ResourceExhausted",
           "Unavailable", "VirtfleetError"]
