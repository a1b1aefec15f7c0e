"""The error classes manager code raises: the shared hierarchy (virtfleet/errors.py), under one import path.

Kept so every layer of the manager imports its errors from one place; there is
no second hierarchy here and no mapping: virtfleet/rpc.py is the only one.
"""
from virtfleet.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted,
                              Unavailable, VirtfleetError)

__all__ = ["AlreadyExists", "FailedPrecondition", "InvalidArgument", "NotFound", "ResourceExhausted",
           "Unavailable", "VirtfleetError"]
