"""The enrollment listener: EnrollService alone, over TLS without a client certificate.

A host that enrolls has no certificate yet, so this listener cannot ask for one;
its one-time token is its credential (manager/service/hosts.py), which is why
EnrollService is not on the fleet API nor in its role table. The server
certificate is the manager's own (`CertificateAuthority.manager_server_material`)
and its chain carries the CA, which `virtfleet-agent enroll` checks against the
fingerprint the admin gave it before it sends anything.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent import futures
from pathlib import Path

import grpc

from virtfleet import rpc
from virtfleet.errors import VirtfleetError
from virtfleet.rpc import translating_errors
from virtfleet.v1 import pki_pb2, pki_pb2_grpc

from ..app import ManagerApp
from ..auth.identity import Identity, Kind
from ..auth.wire import new_request_id
from .servertls import FollowingCa

log = logging.getLogger(__name__)


ENROLL_METHOD = "/virtfleet.v1.EnrollService/Enroll"


class EnrollServicer(pki_pb2_grpc.EnrollServiceServicer):
    """Every enrollment, made or refused, is an event (the token and CSR only as length and hash)."""

    def __init__(self, app: ManagerApp) -> None:
        self._hosts = app.hosts
        self._events = app.events

    @translating_errors
    def Enroll(self, request: pki_pb2.EnrollRequest, context: grpc.ServicerContext):
        peer = context.peer()
        started = time.monotonic()
        code, message, host = grpc.StatusCode.OK, "", ""
        try:
            e = self._hosts.enroll_with_token(request.token, request.csr_pem)
            host = e.host.name
        except Exception as exc:
            code = exc.code if isinstance(exc, VirtfleetError) else grpc.StatusCode.INTERNAL
            message = getattr(exc, "message", str(exc))
            log.warning("enrollment from %s refused: %s", peer, message)
            raise
        finally:
            self._events.record_call(identity=Identity(host or "enrolling host", Kind.HOST if host else Kind.ANONYMOUS,
                                                       None, peer=peer),
                                     method=ENROLL_METHOD, request=request, code=code, message=message,
                                     duration_s=time.monotonic() - started, request_id=new_request_id())
        return pki_pb2.EnrollResponse(host=e.host.name, certificate_pem=e.certificate_pem,
                                      ca_certificate_pem=e.ca_certificate_pem)


def listen_names(listen: str) -> list[str]:
    """The names the listener's certificate carries besides virtfleet-manager: its address, when one."""
    if listen.startswith("unix:"):
        return []
    host = listen.rpartition(":")[0].strip("[]")
    return [host] if host and host not in ("0.0.0.0", "::") else []


def build_enroll_server(app: ManagerApp, listen: str, *, max_workers: int = 4) -> grpc.Server:
    """Bound and not started; `listen` is HOST:PORT or unix:///PATH (the lab's hosts reach it there)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="enroll"))
    rpc.add_service(server, pki_pb2_grpc.add_EnrollServiceServicer_to_server, EnrollServicer(app))
    creds = FollowingCa(app.ca, listen_names(listen), client_auth=False).credentials()   # follows a CA rollover
    if listen.startswith("unix://"):
        Path(listen.removeprefix("unix://")).unlink(missing_ok=True)
    if server.add_secure_port(listen, creds) == 0:
        raise OSError(f"cannot listen for enrollments on {listen}")
    if listen.startswith("unix://"):
        os.chmod(listen.removeprefix("unix://"), 0o666)   # the token, not the socket's mode, is the credential
    return server
