"""Where the CLI finds the manager, and how it shows the manager's errors.

Each setting from the first place that has it: command-line flag, environment
(VIRTFLEET_MANAGER, VIRTFLEET_CERT_DIR), ~/.config/virtfleet/cli.toml (keys
`manager`, `cert_dir`), then a running lab's socket, then the system socket.
"""
from __future__ import annotations

import functools
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
import grpc

from virtfleet.rpc import field_violations
from .. import client
from ..lab.layout import LabLayout

DEFAULT_SOCKET = "/run/virtfleet/manager.sock"
STATUS_DETAILS_KEY = "grpc-status-details-bin"   # where a server puts its google.rpc.Status
CONFIG_KEYS = ("manager", "cert_dir")


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "virtfleet" / "cli.toml"


def read_config(path: Path) -> dict[str, str]:
    """The CLI's settings file; unknown keys are refused (a typo must not silently reach another manager)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise click.ClickException(f"{path}: unknown settings {', '.join(unknown)} (known: {', '.join(CONFIG_KEYS)})")
    wrong = [k for k, v in data.items() if not isinstance(v, str)]
    if wrong:
        raise click.ClickException(f"{path}: {', '.join(wrong)} must be a string")
    return data


@dataclass(frozen=True)
class Endpoint:
    target: str                  # unix:///path or HOST:PORT
    cert_dir: Path | None        # for HOST:PORT: the admin's ca.pem, cert.pem, key.pem


def resolve_endpoint(manager: str | None, cert_dir: str | None, *, env: Mapping[str, str] = os.environ,
                     config: Path | None = None) -> Endpoint:
    """flags > env > cli.toml > a running lab's socket > the system socket (each key on its own)."""
    file = read_config(config or config_path(env))
    target = manager or env.get("VIRTFLEET_MANAGER") or file.get("manager")
    certs = cert_dir or env.get("VIRTFLEET_CERT_DIR") or file.get("cert_dir")
    if not target:
        lab = LabLayout.from_env()
        target = str(lab.manager_socket) if lab.state_file.exists() else DEFAULT_SOCKET
    if target.startswith("/"):
        target = "unix://" + target
    return Endpoint(target, Path(certs).expanduser() if certs else None)


def open_channel(target: str, *, cert_dir: Path | None = None) -> grpc.Channel:
    """manager/client.py's channel (login on the unix socket, an admin certificate on TCP); its refusals
    as the CLI's errors."""
    try:
        return client.open_channel(target, cert_dir=cert_dir)
    except client.LoginFailed as exc:
        raise click.ClickException(str(exc)) from None


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
