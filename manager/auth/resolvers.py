"""Who is calling, per listener: a session token on the unix socket, a client certificate on TCP."""
from __future__ import annotations

from collections.abc import Callable

import grpc

from virtfleet.errors import PermissionDenied

from ..pki import fingerprint as fingerprint_of
from .context import Caller, Unauthenticated
from .identity import Identity
from .sessions import SessionBook
from .wire import SESSION_KEY


def metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key and isinstance(v, str):
            return v
    return None


class SessionResolver:
    """The unix socket: the caller shows the token its login returned."""

    def __init__(self, sessions: SessionBook, login_path: str) -> None:
        self._sessions = sessions
        self._login_path = login_path

    def resolve(self, context: grpc.ServicerContext) -> Caller:
        token = metadata_value(context, SESSION_KEY)
        identity = self._sessions.lookup(token) if token else None
        if identity is None:
            what = "an unknown or expired session" if token else "no session"
            raise Unauthenticated(f"{what}: log in on {self._login_path} first (the virtfleet CLI does it for you)")
        # A local user's role is the one its groups gave at login; it changes at the next login.
        return Caller(identity, lambda: identity)


MAX_CACHED_CERTIFICATES = 4096


class CertificateResolver:
    """The remote fleet API: TLS has checked the certificate is our CA's; the admins table says whose it is.

    `lookup(fingerprint)` is the admin directory (manager/service/admins.py): None for a certificate
    that is not an admin's — unknown, revoked, a host's, the manager's own."""

    def __init__(self, lookup: Callable[[str], Identity | None]) -> None:
        self._lookup = lookup
        self._fingerprints: dict[bytes, str] = {}    # parsing a certificate per call cost more than the call's check

    def resolve(self, context: grpc.ServicerContext) -> Caller:
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            raise Unauthenticated("no client certificate")
        fingerprint = self._fingerprints.get(pems[0])
        if fingerprint is None:
            if len(self._fingerprints) >= MAX_CACHED_CERTIFICATES:
                self._fingerprints.clear()
            fingerprint = self._fingerprints[pems[0]] = fingerprint_of(pems[0])
        identity = self._lookup(fingerprint)
        if identity is None:
            names = [v.decode() for v in context.auth_context().get("x509_common_name", [])]
            raise PermissionDenied(f"certificate {fingerprint[:23]}… ({', '.join(names) or 'no name'}) is not "
                                   "an admin's certificate, or it was revoked")
        peer = context.peer()

        def recheck() -> Identity | None:
            now = self._lookup(fingerprint)
            return Identity(now.name, now.kind, now.role, peer=peer) if now is not None else None

        return Caller(Identity(identity.name, identity.kind, identity.role, peer=peer), recheck)
