"""Where the CLI finds the manager, and how it shows the manager's errors."""
from __future__ import annotations

import functools
import os
import sys

import click
import grpc

from virtfleet.rpc import field_violations
from ..lab.layout import LabLayout

DEFAULT_SOCKET = "/run/virtfleet/manager.sock"


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


def show_rpc_errors(fn):
    """Print `error: CODE: message` (and each bad field) instead of a traceback; exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            code = exc.code()
            msg = exc.details()
            if code == grpc.StatusCode.UNAVAILABLE and "connect" in (msg or "").lower():
                msg = f"cannot reach the manager ({msg}); is it running? (`virtfleet lab status`)"
            click.echo(f"error: {code.name}: {msg}", err=True)
            for field, desc in field_violations(exc):
                click.echo(f"  field {field}: {desc}", err=True)
            sys.exit(1)

    return wrapper
