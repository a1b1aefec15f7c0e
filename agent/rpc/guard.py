"""The one door check of every agent method: only the manager may call, and errors become statuses.

`ManagerOnlyInterceptor` refuses every method of the agent's TLS listener —
AgentService, VmAgentService, health and reflection alike — to a peer that is
not the manager, before any handler runs; `manager_only` on each servicer
method stays as the second wall (and is the only one of the simulator's
asyncio server). Local health checks (systemd, monitoring) have their own
unix socket (agent.rpc.network.build_health_socket) that serves health alone.

Any certificate our CA signed gets through TLS; only the manager's may drive
an agent (virtfleet.tls.is_manager), so one enrolled host cannot drive
another with its own certificate. A refused caller gets PERMISSION_DENIED;
a method's `virtfleet.errors` failure gets its own status through the one
mapping (virtfleet.rpc), an `InvalidArgument` with its field path as a
`google.rpc.BadRequest` violation. The agent's threaded servers and the fleet
simulator's asyncio one pass through the same check.
"""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Callable, TypeVar

import grpc

from virtfleet.errors import PermissionDenied, VirtfleetError
from virtfleet.rpc import to_status, translating_errors
from virtfleet.tls import NOT_MANAGER, is_manager

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)
WHO = "agent"


def check_manager(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> None:
    if not is_manager(context):
        raise PermissionDenied(NOT_MANAGER)


def manager_only(method: F) -> F:
    """Servicer methods — unary or streaming, threaded or asyncio — for the manager's certificate only."""
    if inspect.isasyncgenfunction(method):
        return _async_streaming(method)  # type: ignore[return-value]
    if inspect.iscoroutinefunction(method):
        return _async_unary(method)  # type: ignore[return-value]
    translated = translating_errors(method, who=WHO)
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def streaming(self, request, context):
            _refuse_others(context)
            yield from translated(self, request, context)
        return streaming  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self, request, context):
        _refuse_others(context)
        return translated(self, request, context)
    return unary  # type: ignore[return-value]


def _refuse_others(context: grpc.ServicerContext) -> None:
    """Before anything looks at the request: a caller that is not the manager learns nothing else."""
    if not is_manager(context):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, NOT_MANAGER)


def _async_unary(method):
    @functools.wraps(method)
    async def unary(self, request, context: grpc.aio.ServicerContext):
        try:
            check_manager(context)
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes a status
            await _abort(context, err, method.__name__)
    return unary


def _async_streaming(method):
    @functools.wraps(method)
    async def streaming(self, request, context: grpc.aio.ServicerContext):
        try:
            check_manager(context)
            async for reply in method(self, request, context):
                yield reply
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes a status
            await _abort(context, err, method.__name__)
    return streaming


async def _abort(context: grpc.aio.ServicerContext, err: Exception, name: str) -> None:
    """The asyncio twin of virtfleet.rpc.translating_errors, with its status mapping (to_status)."""
    if isinstance(err, VirtfleetError):
        await context.abort_with_status(to_status(err))
    log.exception("internal error in %s", name, exc_info=err)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name}; see the {WHO} log")


class ManagerOnlyInterceptor(grpc.ServerInterceptor):
    """Every method of the listener it is on answers only the manager's certificate."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        kind = next(k for k in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
                    if getattr(handler, k) is not None)
        behaviour = getattr(handler, kind)
        streaming_reply = kind.endswith("_stream")

        if streaming_reply:
            def guarded(request, context):
                _refuse_others(context)
                yield from behaviour(request, context)
        else:
            def guarded(request, context):
                _refuse_others(context)
                return behaviour(request, context)
        return handler._replace(**{kind: guarded})
