"""Where the CLI finds the manager, and how it shows the manager's errors."""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

import click
import grpc

from virtfleet.rpc import field_violations
from ..lab.layout import LabLayout

DEFAULT_SOCKET = "/run/virtfleet/manager.sock"
STATUS_DETAILS_KEY = "grpc-status-details-bin"   # where a server puts its google.rpc.Status


def manager_target(explicit: str | None) -> str:
    """--manager, then $VIRTFLEET_MANAGER, then a running lab's manager, then the system socket."""
    target = explicit or os.environ.get("VIRTFLEET_MANAGER")
    if not target:
        lab = LabLayout.from_env()
        target = str(lab.manager_socket) if lab.state_file.exists() else DEFAULT_SOCKET
    if target.startswith("/"):
        target = "unix://" + target
    return target


def open_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])


def reached_manager(exc: grpc.RpcError) -> bool:
    """Whether the manager itself gave this status.

    Every status the manager sends carries a google.rpc.Status in its trailers
    (virtfleet.rpc.to_status); a call that never reached it, or lost it midway,
    ends with a status gRPC made on this side, which carries none. So an
    UNAVAILABLE about an agent or the database, which the manager sends, is
    never taken for the manager being away, whatever its message says.
    """
    return any(key == STATUS_DETAILS_KEY for key, _ in (exc.trailing_metadata() or ()))


def error_line(exc: grpc.RpcError, target: str | None) -> str:
    """`CODE: message`, saying when it is the manager that could not be reached (and where it was looked for)."""
    code, message = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and not reached_manager(exc):
        where = f" at {target.removeprefix('unix://')}" if target else ""
        message = f"cannot reach the manager{where} ({message}); is it running? (`virtfleet lab status`)"
    return f"{code.name}: {message}"


def show_rpc_errors(fn, target: Callable[[], str | None] = lambda: None):
    """Print `error: CODE: message` (and each bad field) instead of a traceback; exit 1.

    `target` tells, after the failure, which manager address the command used.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            click.echo(f"error: {error_line(exc, target())}", err=True)
            for field, desc in field_violations(exc):
                click.echo(f"  field {field}: {desc}", err=True)
            sys.exit(1)

    return wrapper
