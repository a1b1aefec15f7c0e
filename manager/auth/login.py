"""The login socket beside the fleet socket: it tells a local caller who it is.

On each connection the kernel says who connected (SO_PEERCRED: uid and pid, which
the caller cannot forge); the server decides the role from the user's groups,
mints a session token bound to that identity and writes one line back, then
closes. The socket is mode 0666 because it grants nothing by itself: it only
hands a caller a token for what it already is.

Reply (one line of JSON): {"token", "expires_in_s", "name", "role", "peer"}, or
{"error": "..."}. The client sends nothing. One thread accepts; each connection
is answered at once with a short send timeout, so a stuck client holds nothing.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
from pathlib import Path

from .identity import Identity
from .sessions import SessionBook
from .unixusers import RoleGroups, unix_identity

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")    # pid, uid, gid
SEND_TIMEOUT_S = 1.0


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """(uid, pid) of the process at the other end, from the kernel."""
    pid, uid, _gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return uid, pid


def reply_line(identity: Identity, token: str, ttl_s: float) -> bytes:
    return (json.dumps({"token": token, "expires_in_s": ttl_s, "name": identity.name,
                        "role": identity.role.value if identity.role else None, "peer": identity.peer})
            + "\n").encode()


class LoginServer:
    """Started and closed by whoever runs the fleet socket (manager main, the tests' manager)."""

    def __init__(self, path: Path, sessions: SessionBook, groups: RoleGroups) -> None:
        self.path = Path(path)
        self._sessions = sessions
        self._groups = groups
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o666)
        sock.listen(64)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="login", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept()
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closing.is_set():
                    return
                log.exception("login socket %s: accept failed", self.path)
                continue
            with conn:
                try:
                    self._answer(conn)
                except Exception:  # noqa: BLE001 - one bad connection must not stop logins
                    log.exception("login socket %s: answering a connection failed", self.path)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(SEND_TIMEOUT_S)
        uid, pid = peer_credentials(conn)
        identity = unix_identity(uid, pid, self._groups)
        token = self._sessions.mint(identity)
        conn.sendall(reply_line(identity, token, self._sessions.ttl_s))
        log.debug("login: %s (%s) as %s", identity.name, identity.peer, identity.role)
