"""How every program reaches the manager's fleet API: the CLI, the lab, the benchmarks, the tests.

- Unix socket: log in on `<socket>.login` (the manager reads our uid from the
  kernel and hands back a session token), then send the token with every call.
  A token the manager no longer knows (expired, or the manager restarted) is
  renewed once, transparently, and the call repeated.
- TCP: TLS with an admin's client certificate (`ca.pem`, `cert.pem`, `key.pem` in
  `cert_dir`). The manager is verified as the CA's `virtfleet-manager`, whatever
  address reached it.

Every call carries a fresh `x-request-id` (unless the caller set one), which the
manager logs, records and sends back.

Here rather than in manager/cli: the lab and the benchmarks open channels too, and
they sit beside the CLI, not below it.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from virtfleet.enroll import make_key_and_csr
from virtfleet.tls import CA_FILE, CERT_FILE, KEY_FILE, MANAGER_COMMON_NAME

from virtfleet.v1 import admins_pb2, admins_pb2_grpc

from .auth.wire import REQUEST_ID_KEY, SESSION_KEY, login_path, new_request_id

MAX_MESSAGE = 64 * 1024 * 1024
RENEW_BEFORE_S = 30.0      # a token this close to its end is renewed before the call, not after a refusal


class LoginFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Login:
    token: str
    expires: float      # time.monotonic()
    name: str
    role: str | None


def login(fleet_socket: str, timeout_s: float = 5.0) -> Login:
    """One connection to `<socket>.login`; the manager answers with one line and closes."""
    path = login_path(fleet_socket)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise LoginFailed(f"cannot log in on {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(data)
        return Login(reply["token"], time.monotonic() + float(reply["expires_in_s"]), reply["name"], reply["role"])
    except (ValueError, KeyError, TypeError):
        raise LoginFailed(f"{path} answered something that is not a login: {data[:80]!r}") from None


class _Session:
    """The current token of one channel; renewed under a lock so concurrent calls log in once."""

    def __init__(self, fleet_socket: str) -> None:
        self._socket = fleet_socket
        self._lock = threading.Lock()
        self._login: Login | None = None

    def token(self) -> str | None:
        """None when the login socket cannot be reached: the call goes out without a token and the
        manager (or its absence) gives the status the caller sees."""
        with self._lock:
            if self._login is None or self._login.expires - RENEW_BEFORE_S <= time.monotonic():
                try:
                    self._login = login(self._socket)
                except LoginFailed:
                    self._login = None
                    return None
            return self._login.token

    def forget(self, token: str | None) -> None:
        with self._lock:
            if self._login is not None and self._login.token == token:
                self._login = None


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = details.compression


class _Identifying(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the request id (and on the unix socket the session token) to every call."""

    def __init__(self, session: _Session | None) -> None:
        self._session = session

    def _details(self, details: grpc.ClientCallDetails) -> tuple[grpc.ClientCallDetails, str | None]:
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != SESSION_KEY]
        if not any(k == REQUEST_ID_KEY for k, _ in metadata):
            metadata.append((REQUEST_ID_KEY, new_request_id()))
        token = self._session.token() if self._session else None
        if token:
            metadata.append((SESSION_KEY, token))
        return _CallDetails(details, metadata), token

    def intercept_unary_unary(self, continuation, client_call_details, request):
        details, token = self._details(client_call_details)
        outcome = continuation(details, request)
        if self._session is not None and _unauthenticated(outcome):
            self._session.forget(token)      # the manager forgot it (expired, restarted): once more, anew
            details, _ = self._details(client_call_details)
            outcome = continuation(details, request)
        return outcome

    def intercept_unary_stream(self, continuation, client_call_details, request):
        """Not repeated on UNAUTHENTICATED (its items may have been used); the token is renewed ahead instead."""
        details, _ = self._details(client_call_details)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        details, _ = self._details(client_call_details)
        return continuation(details, request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        details, _ = self._details(client_call_details)
        return continuation(details, request_iterator)


def _unauthenticated(outcome) -> bool:
    """Only a finished call (a blocking one) is looked at: a `.future()` must not be waited for here."""
    try:
        return outcome.done() and outcome.code() == grpc.StatusCode.UNAUTHENTICATED
    except Exception:  # noqa: BLE001 - an outcome that cannot tell is not a refusal
        return False


def is_unix(target: str) -> bool:
    return target.startswith("/") or target.startswith("unix:")


def open_channel(target: str, *, cert_dir: Path | str | None = None, options: list | None = None) -> grpc.Channel:
    """A channel to the manager at `target` (/path.sock, unix:///path.sock or HOST:PORT)."""
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE), *(options or [])]
    if is_unix(target):
        path = target.removeprefix("unix://")
        return grpc.intercept_channel(grpc.insecure_channel(f"unix://{path}", options=opts),
                                      _Identifying(_Session(path)))
    if cert_dir is None:
        raise LoginFailed(f"{target} is a TCP address: the remote fleet API needs an admin certificate "
                          "(--cert-dir DIR with ca.pem, cert.pem and key.pem; `virtfleet admin add` makes one)")
    d = Path(cert_dir)
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=(d / CA_FILE).read_bytes(),
                                             private_key=(d / KEY_FILE).read_bytes(),
                                             certificate_chain=(d / CERT_FILE).read_bytes())
    except OSError as exc:
        raise LoginFailed(f"cannot read the admin certificate in {d}: {exc.strerror} ({exc.filename})") from None
    opts.append(("grpc.ssl_target_name_override", MANAGER_COMMON_NAME))
    return grpc.intercept_channel(grpc.secure_channel(target, creds, options=opts), _Identifying(None))


def save_admin_material(out_dir: Path, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
    """ca.pem, cert.pem, key.pem, each 0600 in a 0700 directory: together they are the admin's access."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)
    for name, data in ((CA_FILE, ca_pem), (CERT_FILE, cert_pem), (KEY_FILE, key_pem)):
        tmp = out_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, out_dir / name)


def add_admin(channel: grpc.Channel, *, name: str, role: str, out_dir: Path):
    """The key is made here and never leaves; the manager signs the CSR. Returns the Admin message."""
    key, csr = make_key_and_csr(name)
    reply = admins_pb2_grpc.AdminServiceStub(channel).AddAdmin(
        admins_pb2.AddAdminRequest(name=name, role=role, csr_pem=csr), timeout=30)
    save_admin_material(out_dir, reply.ca_certificate_pem, reply.certificate_pem, key)
    return reply.admin
