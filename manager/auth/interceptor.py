"""Every fleet-API call: who calls, may they, under which request id — decided before the servicer runs.

One interceptor per listener (its resolver knows that transport's proof of
identity). The work happens in a wrapper around the method's behaviour, not in
`intercept_service`: gRPC runs interceptors on its polling thread, where neither
the caller's certificate (the servicer context) nor the thread that will run the
servicer is known, and the context variables must be set in that thread.

Order for each call: request id (the client's if sane, else a new one) → identity
(UNAUTHENTICATED / PERMISSION_DENIED, the request id in the trailers) → role from
the one table (a method missing from it is nobody's) → the request id in the
trailers of a unary call, in the headers of a stream (it is let in) → the servicer, with
identity and request id bound → the recorder, whatever the outcome.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from virtfleet.errors import PermissionDenied, VirtfleetError
from virtfleet.rpc import to_status

from .context import CallAuth, CallRecorder, Resolver, bound, check_still_allowed, denial
from .roles import required_role
from .wire import REQUEST_ID_KEY, new_request_id, sane_request_id

log = logging.getLogger(__name__)


class AuthorizingInterceptor(grpc.ServerInterceptor):
    def __init__(self, resolver: Resolver, recorder: CallRecorder | None = None) -> None:
        self._resolver = resolver
        self._recorder = recorder

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None                      # no such method: gRPC answers UNIMPLEMENTED
        method = handler_call_details.method
        client_id = next((v for k, v in handler_call_details.invocation_metadata or () if k == REQUEST_ID_KEY), None)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, client_id, handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, client_id, handler.unary_stream))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._unary(method, client_id, handler.stream_unary, False))
        return handler._replace(stream_stream=self._stream(method, client_id, handler.stream_stream, False))

    # -- responses: one, or a stream (requests streamed, as reflection's, are not recorded) --------

    def _unary(self, method: str, client_id: Any, behavior: Callable, unary_request: bool = True) -> Callable:
        def unary(request, context: grpc.ServicerContext):
            call = _Call(self, method, client_id, request if unary_request else None, context)
            try:
                auth = call.admit(headers=False)
                with bound(auth, call.request_id):
                    return behavior(request, context)
            except BaseException as err:
                call.failed(err)
                raise
            finally:
                call.finish()
        return unary

    def _stream(self, method: str, client_id: Any, behavior: Callable, unary_request: bool = True) -> Callable:
        def stream(request, context: grpc.ServicerContext) -> Iterator:
            call = _Call(self, method, client_id, request if unary_request else None, context)
            try:
                auth = call.admit()
                with bound(auth, call.request_id):
                    for item in behavior(request, context):
                        yield item
                        check_still_allowed()
            except BaseException as err:
                call.failed(err)
                raise
            finally:
                call.finish()
        return stream


class _Call:
    """One call's bookkeeping: its id, its outcome, its report to the recorder."""

    def __init__(self, interceptor: AuthorizingInterceptor, method: str, client_id: Any, request: Any,
                 context: grpc.ServicerContext) -> None:
        self.started = time.monotonic()
        self.interceptor, self.method, self.request, self.context = interceptor, method, request, context
        self.request_id = sane_request_id(client_id) or new_request_id()
        self.identity = None
        self.code: grpc.StatusCode | None = None
        self.message = ""

    def admit(self, *, headers: bool = True) -> CallAuth:
        """The caller and its right to this method, or the call's end with the status that says why."""
        try:
            caller = self.interceptor._resolver.resolve(self.context)
            self.identity = caller.identity
            needed = required_role(self.method)
            if needed is None:
                raise PermissionDenied(f"{self.method} is in no role's table: refused for everyone")
            if not caller.identity.may(needed):
                raise PermissionDenied(denial(caller.identity, needed))
        except VirtfleetError as err:
            # A refusal is a trailers-only answer (the request id among the trailers): a client
            # that got headers was let in, which a stream's caller can tell before any item.
            self.code, self.message = err.code, err.message
            status = to_status(err)
            self.context.abort_with_status(type(status)(status.code, status.details,
                                                        (*status.trailing_metadata, (REQUEST_ID_KEY, self.request_id))))
        if headers:       # a stream: its caller learns at once that it was let in, and the id
            try:
                self.context.send_initial_metadata(((REQUEST_ID_KEY, self.request_id),))
            except ValueError:
                pass        # already sent (cannot happen before the servicer runs; harmless if it did)
        else:             # one reply: the id travels with its status (headers of their own cost a
            self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))  # send: bench.api)
        return CallAuth(caller, self.method, needed)

    def failed(self, err: BaseException) -> None:
        """An abort (ours or the servicer's) has put its status on the context; anything else is UNKNOWN.
        The servicer's abort replaced the trailers: the request id goes back among them."""
        if self.code is not None:
            return
        trailers = tuple(self.context.trailing_metadata() or ())
        if (REQUEST_ID_KEY, self.request_id) not in trailers:
            self.context.set_trailing_metadata((*trailers, (REQUEST_ID_KEY, self.request_id)))
        if isinstance(err, VirtfleetError):       # check_still_allowed between stream items
            self.code, self.message = err.code, err.message
            try:
                self.context.abort_with_status(to_status(err))
            except Exception:  # noqa: BLE001 - abort raises by design; the status is set
                pass
            return
        code = self.context.code()
        if code is None and isinstance(err, GeneratorExit):
            code = grpc.StatusCode.CANCELLED     # the client went away mid-stream
        self.code = code or grpc.StatusCode.UNKNOWN
        details = self.context.details()
        self.message = details.decode(errors="replace") if isinstance(details, bytes) else (details or str(err))

    def finish(self) -> None:
        code = self.code or self.context.code() or grpc.StatusCode.OK
        if not self.message and code != grpc.StatusCode.OK:
            details = self.context.details()
            self.message = details.decode(errors="replace") if isinstance(details, bytes) else (details or "")
        recorder = self.interceptor._recorder
        if recorder is None:
            return
        try:
            recorder.record_call(identity=self.identity, method=self.method, request=self.request, code=code,
                                 message=self.message, duration_s=time.monotonic() - self.started,
                                 request_id=self.request_id)
        except Exception:  # noqa: BLE001 - a broken recorder must never fail a call
            log.exception("recording %s (request %s) failed", self.method, self.request_id)

