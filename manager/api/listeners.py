"""The fleet API's listeners: the local unix socket (with its login socket) and the remote TLS port.

Each is its own gRPC server with the same servicers, because each has its own way
of knowing the caller (manager/auth/resolvers.py). Used by `virtfleet-manager` and
by the tests' in-process manager, so both serve exactly the same way.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health

from ..app import ManagerApp
from ..auth.context import CallRecorder
from ..auth.login import LoginServer
from ..auth.resolvers import CertificateResolver, SessionResolver
from ..auth.unixusers import RoleGroups
from ..auth.wire import login_path
from ..config import ManagerConfig
from .enroll import build_enroll_server
from .server import build_server
from .servertls import FollowingCa

log = logging.getLogger(__name__)


@dataclass
class Listeners:
    servers: list[tuple[grpc.Server, health.HealthServicer]] = field(default_factory=list)
    login: LoginServer | None = None
    socket_path: Path | None = None
    fleet_port: int = 0           # the remote API's bound port (0: off)
    enroll: grpc.Server | None = None   # hosts spend their enrollment tokens here (enroll_listen)

    def stop(self, grace: float | None = 5.0) -> None:
        for _, h in self.servers:
            h.enter_graceful_shutdown()
        for s, _ in self.servers:
            s.stop(grace=grace).wait()
        if self.enroll is not None:
            self.enroll.stop(grace=grace).wait()
        if self.login is not None:
            self.login.close()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)


def serve(app: ManagerApp, cfg: ManagerConfig, *, max_workers: int = 16) -> Listeners:
    """Start the unix socket (mode 0666: each caller is identified and authorized per call) and its login
    socket, and the remote API when `fleet_listen` is set. Every call goes to the audit trail
    (`app.events`)."""
    recorder: CallRecorder = app.events
    done = Listeners()
    try:
        if cfg.enroll_listen:   # before the fleet API: whoever sees that one serve can enroll at once
            done.enroll = build_enroll_server(app, cfg.enroll_listen)
            done.enroll.start()
            log.info("manager serving host enrollment on %s", cfg.enroll_listen)
        _serve_unix(app, cfg, recorder, max_workers, done)
        if cfg.fleet_listen:
            _serve_tcp(app, cfg, recorder, max_workers, done)
    except BaseException:
        done.stop(grace=None)
        raise
    return done


def _serve_unix(app: ManagerApp, cfg: ManagerConfig, recorder, max_workers: int, done: Listeners) -> None:
    sock = Path(cfg.listen.removeprefix("unix://"))
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    groups = RoleGroups(admin=cfg.admin_group, operator=cfg.operator_group, auditor=cfg.auditor_group)
    done.login = LoginServer(Path(login_path(str(sock))), app.sessions, groups)
    done.login.start()
    server, health_servicer = build_server(app, resolver=SessionResolver(app.sessions, login_path(str(sock))),
                                           recorder=recorder, max_workers=max_workers)
    done.servers.append((server, health_servicer))
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    os.chmod(sock, 0o666)
    done.socket_path = sock


def tls_names(listen: str) -> list[str]:
    """What the server certificate names besides virtfleet-manager: the listen address unless a wildcard,
    this machine's names, and loopback."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    names = [] if host in ("", "0.0.0.0", "::") else [host]
    names += [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(n for n in names if n))


def _serve_tcp(app: ManagerApp, cfg: ManagerConfig, recorder, max_workers: int, done: Listeners) -> None:
    tls = FollowingCa(app.ca, tls_names(cfg.fleet_listen), client_auth=True)   # follows a CA rollover
    server, health_servicer = build_server(app, resolver=CertificateResolver(app.admins.identity_for),
                                           recorder=recorder, max_workers=max_workers)
    done.servers.append((server, health_servicer))
    done.fleet_port = server.add_secure_port(cfg.fleet_listen, tls.credentials())
    if not done.fleet_port:
        raise OSError(f"cannot listen on {cfg.fleet_listen} (fleet_listen)")
    server.start()
    log.info("manager serving the remote fleet API on %s (TLS, admin client certificates)", cfg.fleet_listen)
