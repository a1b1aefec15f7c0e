"""Errors ⇄ gRPC statuses, both ways, for every server and client of virtfleet.

A server method raises a `virtfleet.errors` class; `translating_errors` aborts the
call with its code, and an `InvalidArgument` also travels as a `google.rpc.BadRequest`
field violation. A client turns a failed call back into the same class with
`error_from_call`, reading the code and the BadRequest details — never the message
text — and can put its own prefix before the field path, so an agent's
`qbg.managerid` reaches the admin as `nics[2].virtualport.managerid`.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from typing import Any, Callable, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from . import deadline
from .errors import BY_CODE, InvalidArgument, VirtfleetError, shown

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)


MAX_MESSAGE = 2048      # a status travels in HTTP/2 trailers: keep it far below their 16 KiB limit
MAX_TEXT = 64 * 1024    # no string field of the contract needs more; larger ones are refused at the door


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def to_status(err: VirtfleetError) -> grpc.Status:
    status = status_pb2.Status(code=err.code.value[0], message=_cut(err.message, MAX_MESSAGE))
    if isinstance(err, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=_cut(err.field, 256),
                                                                description=_cut(err.description, MAX_MESSAGE))
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return rpc_status.to_status(status)


@dataclasses.dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes are not the method's message.

    grpc answers a deserializer's exception with INTERNAL and a traceback per call;
    the caller sent garbage, which is INVALID_ARGUMENT, so the deserializer hands
    this to the method and `translating_errors` refuses it there.
    """

    message_type: str


def _tolerant(deserialize: Callable[[bytes], Any], message_type: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - any decode failure is the caller's bad bytes
            return Undecodable(message_type)
    return parse


class _Capture:
    """Looks like a grpc.Server to a generated add_*Servicer_to_server; keeps the handlers it registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers) -> None:  # the registered handlers below carry the same
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self.service, self.handlers = service, handlers


def add_service(server: grpc.Server, add_to_server: Callable[[Any, Any], None], servicer: Any) -> None:
    """Register a servicer as its generated `add_*_to_server` would, with decoding that never fails."""
    capture = _Capture()
    add_to_server(servicer, capture)
    handlers = {}
    for method, handler in capture.handlers.items():
        if not handler.request_streaming and handler.request_deserializer is not None:
            message_class = getattr(handler.request_deserializer, "__self__", None)
            name = message_class.DESCRIPTOR.full_name if hasattr(message_class, "DESCRIPTOR") else "request"
            handler = handler._replace(request_deserializer=_tolerant(handler.request_deserializer, name))
        handlers[method] = handler
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)


def _check_arrival(request: Any) -> None:
    if isinstance(request, Undecodable):
        raise InvalidArgument("request", f"the bytes received are not a {request.message_type} message")
    if isinstance(request, Message):
        check_request(request)


def check_request(message: Message, path: str = "") -> None:
    """Refuse what no field of the contract may hold, before any code sees it: NUL bytes in text
    (PostgreSQL cannot store them, C libraries cut at them) and text beyond MAX_TEXT."""
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        if field.type == field.TYPE_STRING:
            items = value if field.is_repeated else [value]
            for i, text in enumerate(items):
                where = f"{name}[{i}]" if field.is_repeated else name
                if "\x00" in text:
                    raise InvalidArgument(where, "contains a NUL byte")
                if len(text) > MAX_TEXT:
                    raise InvalidArgument(where, f"is {len(text)} characters long; at most {MAX_TEXT}")
        elif field.type == field.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    _check_map_item(f"{name}[{shown(key)}]", key, item)
            elif field.is_repeated:
                for i, item in enumerate(value):
                    check_request(item, f"{name}[{i}]")
            else:
                check_request(value, name)


def _check_map_item(where: str, key: object, item: object) -> None:
    for text in (key, item):
        if isinstance(text, str) and ("\x00" in text or len(text) > MAX_TEXT):
            raise InvalidArgument(where, "contains a NUL byte or is too long")
        if isinstance(text, Message):
            check_request(text, where)


def _abort(context: grpc.ServicerContext, err: BaseException, method: str, who: str) -> None:
    if isinstance(err, VirtfleetError):
        context.abort_with_status(to_status(err))
    log.exception("internal error in %s", method, exc_info=err)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the {who} log")


def translating_errors(method: F | None = None, *, who: str = "server") -> F:
    """Servicer methods (unary or streaming) raise VirtfleetError; callers see the mapped status.

    The request is checked at the door first, and while the method runs its caller's deadline
    is the one every call made on its behalf inherits (virtfleet.deadline).

    `context.abort` raises itself, so an abort from inside the method passes through untouched.
    """

    def decorate(fn: F) -> F:
        name = fn.__name__
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def streaming(self, request, context: grpc.ServicerContext):
                try:
                    _check_arrival(request)
                    with deadline.serving(context, name):
                        yield from fn(self, request, context)
                except Exception as err:  # noqa: BLE001 - every failure becomes a status
                    if _is_abort(err):
                        raise
                    _abort(context, err, name, who)
            return streaming  # type: ignore[return-value]

        @functools.wraps(fn)
        def unary(self, request, context: grpc.ServicerContext):
            try:
                _check_arrival(request)
                with deadline.serving(context, name):
                    return fn(self, request, context)
            except Exception as err:  # noqa: BLE001 - every failure becomes a status
                if _is_abort(err):
                    raise
                _abort(context, err, name, who)
        return unary  # type: ignore[return-value]

    return decorate(method) if method is not None else decorate  # type: ignore[return-value]


def _is_abort(err: BaseException) -> bool:
    # grpc raises a bare Exception from context.abort(); it is already the call's status.
    return type(err) is Exception and not err.args


def field_violations(exc: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of a failed call's BadRequest, if it carried one."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:
        return []
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def error_from_call(exc: grpc.RpcError, *, field_prefix: str = "", where: str = "") -> VirtfleetError:
    """The error a failed call stands for: same class, field path kept (under `field_prefix`).

    `where` names the peer in the message of non-field errors (`host h1: …`).
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    message = f"{where}: {details}" if where else details
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = field_violations(exc)
        if violations:
            field, description = violations[0]
            return InvalidArgument(field, description).under(field_prefix)
        return InvalidArgument(field_prefix or "request", message)
    return BY_CODE.get(code, VirtfleetError)(message)
