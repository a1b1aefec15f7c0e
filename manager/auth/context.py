"""Who the current fleet-API call is for, and what records it.

The interceptor (interceptor.py) binds these for the duration of each call, in the
thread that runs the servicer, so a service or a log line deep below the API can
ask `current_identity()` and `current_request_id()` without every function passing
them along. Outside a call (the monitor, the periodic audit) the identity is the
manager itself, `SYSTEM`.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from virtfleet.errors import PermissionDenied, VirtfleetError

from .identity import SYSTEM, Identity, Role


class Unauthenticated(VirtfleetError):
    """The caller has not said who they are (no session, an unknown or an expired one)."""

    code = grpc.StatusCode.UNAUTHENTICATED


@dataclass(frozen=True)
class Caller:
    identity: Identity
    recheck: Callable[[], Identity | None]   # the same caller as of now (role changed?), None once revoked


class Resolver(Protocol):
    """How one listener learns who is calling: its transport's own proof (a session token, a certificate)."""

    def resolve(self, context: grpc.ServicerContext) -> Caller:
        """Raises Unauthenticated (no proof) or PermissionDenied (a proof of nobody we know)."""


class CallRecorder(Protocol):
    """Told of every fleet-API call once it has ended (done, failed or refused); decides what becomes an event."""

    def record_call(self, *, identity: Identity | None, method: str, request: Any, code: grpc.StatusCode,
                    message: str, duration_s: float, request_id: str) -> None: ...


@dataclass(frozen=True)
class CallAuth:
    caller: Caller
    method: str
    needed: Role

    @property
    def identity(self) -> Identity:
        return self.caller.identity


_call: contextvars.ContextVar[CallAuth | None] = contextvars.ContextVar("virtfleet_call", default=None)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("virtfleet_request_id", default="")


def current_identity() -> Identity:
    call = _call.get()
    return call.identity if call is not None else SYSTEM


def current_request_id() -> str:
    return _request_id.get()


@contextlib.contextmanager
def bound(call: CallAuth | None, request_id: str) -> Iterator[None]:
    """For one call: set, then put back what was there (pool threads serve many calls)."""
    call_token, rid_token = _call.set(call), _request_id.set(request_id)
    try:
        yield
    finally:
        _call.reset(call_token)
        _request_id.reset(rid_token)


def denial(identity: Identity, needed: Role) -> str:
    """`needs role operator; uid 1001 (bob) has auditor`: the role and who lacked it, as the caller reads it."""
    who = identity.name
    if identity.kind.value == "unix" and identity.peer.startswith("uid="):
        who = f"{identity.peer.split()[0].replace('=', ' ')} ({identity.name})"
    elif identity.kind.value == "cert":
        who = f"admin {identity.name}"
    has = f"has {identity.role.value}" if identity.role is not None else "has no role"
    return f"needs role {needed.value}; {who} {has}"


def check_still_allowed() -> None:
    """For long streams, between items and about every second: the caller may have been revoked
    or lost the role since the call began; the next item is then not sent."""
    call = _call.get()
    if call is None:
        return
    now = call.caller.recheck()
    if now is None:
        raise PermissionDenied(f"{call.identity.name}'s access was revoked during the call")
    if not now.may(call.needed):
        raise PermissionDenied(denial(now, call.needed))
