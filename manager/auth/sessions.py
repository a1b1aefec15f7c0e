"""Session tokens of local users: what a login on `<socket>.login` hands out.

gRPC Python cannot see the peer credentials of a unix-socket caller
(grpc/grpc#15511), so the uid is read once, by the login socket, and the caller
carries a random token bound to that identity on its fleet-API calls. Tokens live
in the manager's memory only: a restarted manager forgets them and clients log in
again (the client does it by itself on UNAUTHENTICATED).
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from .identity import Identity

MAX_SESSIONS = 100_000   # a local loop of logins cannot grow the manager without bound


@dataclass(frozen=True)
class Session:
    identity: Identity
    expires: float       # time.monotonic()


class SessionBook:
    def __init__(self, ttl_s: float = 600.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def mint(self, identity: Identity) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions = {t: s for t, s in self._sessions.items() if s.expires > now}
                while len(self._sessions) >= MAX_SESSIONS:      # still full: the oldest go first
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[token] = Session(identity, now + self.ttl_s)
        return token

    def lookup(self, token: str) -> Identity | None:
        """None for an unknown or expired token (an expired one is forgotten)."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= time.monotonic():
                del self._sessions[token]
                return None
            return session.identity
