"""The caller of the request being served: its deadline, and whether it is still waiting.

A servicer method runs in one worker thread with its gRPC `context`. `serving`
(applied to every servicer method by `virtfleet.rpc.translating_errors`) makes that context the thread's current caller (a contextvar) for the method's
duration, so the code far below it — the manager's agent clients, the agent's
VM lifecycle — can read the caller's deadline without every service signature
carrying a context. Outside a request (background work, a test calling a service
directly) there is no caller: no deadline, always waiting.

Two uses, one rule each:
- `budget(cap)`: how long a call made on the caller's behalf may take — the
  caller's remaining time less a margin (to record the result and reply), never
  more than the callee's own cap; the caller already gone → `DeadlineExceeded`.
- `check(what)`: just before a change starts (after any queueing): a caller who
  gave up (deadline passed, or cancelled) gets no change it cannot learn of.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Protocol

from .errors import DeadlineExceeded

MARGIN_S = 0.5          # kept back from a callee's budget: the caller's side records the result and replies
_NO_DEADLINE_S = 1e9    # grpc reports "no deadline" as a remaining time of centuries


class Caller(Protocol):
    """What a grpc.ServicerContext offers about the caller (the sync server's)."""

    def is_active(self) -> bool: ...

    def time_remaining(self) -> float | None: ...


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("virtfleet_caller", default=None)


@contextlib.contextmanager
def serving(context: Caller, what: str) -> Iterator[None]:
    """While a servicer method runs: its request's context is the current caller.

    A request whose caller gave up while it waited for a worker thread is not started.
    `virtfleet.rpc.translating_errors` wraps every servicer method in this, so no
    method has to remember it.
    """
    token = _CALLER.set(context)
    try:
        check(f"serving {what}")
        yield
    finally:
        _CALLER.reset(token)


def remaining() -> float | None:
    """Seconds the current caller still waits; None with no caller or no deadline."""
    caller = _CALLER.get()
    if caller is None:
        return None
    left = caller.time_remaining()
    return None if left is None or left > _NO_DEADLINE_S else max(left, 0.0)


def waiting() -> bool:
    """False once the current caller gave up (its deadline passed, or it cancelled)."""
    caller = _CALLER.get()
    if caller is None:
        return True
    left = remaining()
    return caller.is_active() and (left is None or left > 0)


def check(what: str) -> None:
    """Before starting a change: refuse it when its caller can no longer learn the outcome."""
    if not waiting():
        raise DeadlineExceeded(f"the caller gave up (deadline passed or cancelled) before {what}; nothing was changed")


def budget(cap_s: float, what: str) -> tuple[float, bool]:
    """(timeout for a call made on the caller's behalf, whether the caller's deadline set it rather than `cap_s`)."""
    check(what)
    left = remaining()
    if left is None or left - MARGIN_S >= cap_s:
        return cap_s, False
    if left - MARGIN_S <= 0:
        raise DeadlineExceeded(f"too little of the caller's deadline is left ({left:.2f} s) for {what}; "
                               "nothing was changed")
    return left - MARGIN_S, True


def wait_s(default_s: float) -> float:
    """How long to wait for something (a lock, a guest) on the caller's behalf: its remaining time, else `default_s`."""
    left = remaining()
    return default_s if left is None else min(left, default_s)
