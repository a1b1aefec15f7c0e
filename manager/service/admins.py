"""Admins of the remote fleet API: their certificates, their roles, and who a certificate is.

The admins table is the truth; `identity_for` answers every TCP call from an
in-memory cache so a call costs no query. A change made here (revoke, role)
clears the cache before it returns, so it holds from the very next call; a change
made by another manager sharing the database is seen within CACHE_TTL_S.
"""
from __future__ import annotations

import logging
import threading
import time

from cryptography import x509
from psycopg_pool import ConnectionPool

from virtfleet.errors import InvalidArgument
from virtfleet.tls import MANAGER_COMMON_NAME

from ..auth.context import current_identity
from ..auth.identity import Identity, Kind, Role
from ..domain.hostinput import check_host_name
from ..pki import CertificateAuthority, fingerprint
from ..store import admins as admin_store
from ..store.admins import AdminRecord
from ..store.database import reading

log = logging.getLogger(__name__)
CACHE_TTL_S = 30.0


def check_role(role: str, field: str = "role") -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidArgument(field, f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None


def check_admin_name(name: str, field: str = "name") -> str:
    """Like a host's (an admin's certificate is named in the same CA), and never the manager's."""
    check_host_name(name, field, what="admin")
    if name == MANAGER_COMMON_NAME:
        raise InvalidArgument(field, f"{name!r} is the manager's own certificate name")
    return name


class AdminService:
    def __init__(self, pool: ConnectionPool, ca: CertificateAuthority) -> None:
        self._pool = pool
        self._ca = ca
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Identity | None]] = {}

    def add(self, *, name: str, role: str, csr_pem: bytes) -> tuple[AdminRecord, bytes, bytes]:
        """(the admin, its certificate, the CA's). Checked before anything is signed or stored."""
        name = check_admin_name(name)
        wanted = check_role(role)
        if not csr_pem:
            raise InvalidArgument("csr_pem", "a certificate signing request is required")
        cert = self._ca.sign_admin_csr(csr_pem, name)
        serial = format(x509.load_pem_x509_certificate(cert).serial_number, "x")
        with self._pool.connection() as conn:
            if admin_store.host_named(conn, name):
                raise InvalidArgument("name", f"{name!r} is a host's name; an admin needs a name of its own")
            record = admin_store.insert_admin(conn, name=name, role=wanted.value, fingerprint=fingerprint(cert),
                                              serial=serial, created_by=current_identity().name)
        log.info("added admin %s (%s) by %s", name, wanted.value, record.created_by)
        return record, cert, self._ca.bundle_pem   # every CA trusted now: the server's may be from either

    def list(self) -> list[AdminRecord]:
        with self._pool.connection() as conn:
            return admin_store.list_admins(conn)

    def revoke(self, name: str) -> AdminRecord:
        check_admin_name(name)
        with self._pool.connection() as conn:
            record = admin_store.revoke_admin(conn, name)
        self._forget()
        log.info("revoked admin %s by %s", name, current_identity().name)
        return record

    def set_role(self, name: str, role: str) -> AdminRecord:
        check_admin_name(name)
        wanted = check_role(role)
        with self._pool.connection() as conn:
            record = admin_store.set_role(conn, name, wanted.value)
        self._forget()
        log.info("admin %s now has role %s (by %s)", name, wanted.value, current_identity().name)
        return record

    def identity_for(self, cert_fingerprint: str) -> Identity | None:
        """The admin a certificate belongs to; None for a revoked or unknown one (a host's, the manager's)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(cert_fingerprint)
        if hit is not None and hit[0] > now:
            return hit[1]
        with reading(self._pool) as conn:    # a read: not a write the read model must wait for
            record = admin_store.by_fingerprint(conn, cert_fingerprint)
        identity = (Identity(record.name, Kind.CERT, Role(record.role))
                    if record is not None and record.revoked_at is None else None)
        with self._lock:
            self._cache[cert_fingerprint] = (now + CACHE_TTL_S, identity)
        return identity

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()
