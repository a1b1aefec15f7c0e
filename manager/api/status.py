"""Turn our error types into gRPC statuses with google.rpc error details."""
from __future__ import annotations

import functools
import logging
from typing import Callable, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..errors import InvalidArgument, VirtfleetError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)


def to_status(err: VirtfleetError) -> grpc.Status:
    status = status_pb2.Status(code=err.code.value[0], message=err.message)
    if isinstance(err, InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=err.field, description=err.description)]
        )
        status.details.add().Pack(bad)
    return rpc_status.to_status(status)


def translating_errors(method: F) -> F:
    """Servicer methods raise VirtfleetError; clients see the mapped status."""

    @functools.wraps(method)
    def wrapper(self, request, context: grpc.ServicerContext):
        try:
            return method(self, request, context)
        except VirtfleetError as err:
            context.abort_with_status(to_status(err))
        except Exception:
            log.exception("internal error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the manager log")

    return wrapper  # type: ignore[return-value]


def field_violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of a BadRequest, if any."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found
