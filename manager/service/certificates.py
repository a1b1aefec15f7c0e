"""Certificate lifetimes: agents renewed, the manager's client certificate rotated, CA rollover.

The manager drives everything (an agent has no channel to the manager): a check
runs every `interval_s` (a tenth of the shortest lifetime, at most a minute) and

1. gives every host behind the current trust generation the CA bundle
   (`TrustBundle`), so agents trust a new CA before anything is issued to them
   from it, and stop trusting a retired one;
2. rotates the manager's client certificate at two thirds of its lifetime, or when
   a rollover made another CA active — the latter only once every host trusts that
   CA (step 1), or the manager would lock itself out of the hosts that do not;
3. renews each host whose certificate passed two thirds of its lifetime, is from a
   CA that is not the active one, or is not held by the manager:
   `PrepareRenewal` → sign the CSR (the enrollment checks) → `InstallCertificate`
   → store certificate, fingerprint and pin in one transaction (the replaced
   certificate recorded as such) → repin (channels retired, not cut: calls on
   them finish);
4. retires the old CA once every host and the manager hold certificates from the
   new one (then step 1 sends the smaller bundle).

A failure at any step leaves the old certificate in use and is retried at the next
check. No database transaction is held across an agent call. Pins are looked up
by the agent channels themselves (manager/agents/clients.py); renewal, rotation and
retirement are system events in the audit trail (`record_system`).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Callable

from cryptography import x509
from psycopg_pool import ConnectionPool

from virtfleet.errors import VirtfleetError
from virtfleet.tls import MANAGER_COMMON_NAME
from virtfleet.v1 import agent_pb2

from ..agents import AgentClients
from ..pki import CertificateAuthority, Lifetimes, fingerprint, pin_name, serial_hex
from ..store import certificates as cert_store
from ..store.certificates import HostCertificateRecord

log = logging.getLogger(__name__)

RENEW_AFTER = 2 / 3
CHECK_MAX_S = 60.0

RecordSystem = Callable[..., None]  # (action, object_kind, object_name, summary: dict, message="")


def renew_at(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    return not_before + (not_after - not_before) * RENEW_AFTER


def due_for_renewal(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    """Two thirds of the lifetime gone: a third is left for retries while the host is away."""
    return now >= renew_at(not_before, not_after)


def check_interval_s(lifetimes: Lifetimes) -> float:
    """Often enough that a short (test) lifetime is renewed well before it ends."""
    return max(0.2, min(CHECK_MAX_S, min(lifetimes.agent_s, lifetimes.manager_s) / 10))


@dataclass(frozen=True)
class CertificateView:
    name: str
    fingerprint: str
    issuer_fingerprint: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    renew_at: dt.datetime | None
    renew_due: bool
    pin: str = ""


@dataclass(frozen=True)
class CaView:
    fingerprint: str
    not_before: dt.datetime
    not_after: dt.datetime
    state: str


@dataclass(frozen=True)
class PkiStatus:
    cas: list[CaView]
    hosts: list[CertificateView]
    manager: CertificateView
    trust_generation: int


def _no_record(*_args, **_kwargs) -> None:
    pass


class CertificateService:
    def __init__(self, pool: ConnectionPool, ca: CertificateAuthority, agents: AgentClients, *,
                 record_system: RecordSystem | None = None, interval_s: float | None = None) -> None:
        self._pool = pool
        self._ca = ca
        self._agents = agents
        self.record_system: RecordSystem = record_system or _no_record  # the audit trail's system events
        self._interval_s = check_interval_s(ca.lifetimes) if interval_s is None else interval_s
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the periodic check ------------------------------------------------------------

    def start(self) -> None:
        """The periodic check (the agent channels look every host's pin up themselves)."""
        if self._interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._periodically, name="certificates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _periodically(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the next check retries; the thread must live
                log.exception("certificate check failed; retrying in %.1f s", self._interval_s)

    def check(self) -> None:
        """One round of the four steps (module docstring); each host's failure is its own."""
        with self._check_lock:
            self._sync_material()
            hosts = self._hosts()
            self._push_trust(hosts)
            self._rotate_manager_if_due(self._hosts())
            now = dt.datetime.now(dt.timezone.utc)
            for host in self._hosts():
                if self._host_due(host, now):
                    self._renew(host)
            self._retire_if_done(self._hosts())

    def _hosts(self) -> list[HostCertificateRecord]:
        with self._pool.connection() as conn:
            return cert_store.list_host_certificates(conn)

    def _sync_material(self) -> None:
        """New channels trust exactly the CAs of the bundle (it changes at rotate and retire)."""
        if self._agents.material.ca_pem != self._ca.bundle_pem:
            self._agents.use_material(self._ca.manager_material())

    # -- 1. trust bundles ----------------------------------------------------------------

    def _push_trust(self, hosts: list[HostCertificateRecord]) -> None:
        generation, bundle = self._ca.generation, self._ca.bundle_pem
        for host in hosts:
            if host.trust_generation >= generation:
                continue
            try:
                self._agents.call(host.name, host.endpoint, lambda stub, t: stub.TrustBundle(
                    agent_pb2.TrustBundleRequest(ca_bundle_pem=bundle), timeout=t), for_caller=False)
            except VirtfleetError as exc:
                log.warning("host %s did not take the CA bundle (generation %d): %s; retrying at the next check",
                            host.name, generation, exc)
                continue
            with self._pool.connection() as conn:
                cert_store.set_trust_generation(conn, host.name, generation)

    # -- 2. the manager's client certificate -------------------------------------------

    def _rotate_manager_if_due(self, hosts: list[HostCertificateRecord]) -> None:
        cert = x509.load_pem_x509_certificate(self._agents.material.cert_pem)
        from_active = self._ca.active.issued(cert)
        if from_active and not due_for_renewal(cert.not_valid_before_utc, cert.not_valid_after_utc, _now()):
            return
        behind = [h.name for h in hosts if h.trust_generation < self._ca.generation]
        if not from_active and behind:
            log.info("the manager's client certificate moves to the new CA once hosts %s trust it", ", ".join(behind))
            return
        material = self._ca.rotate_manager_material()
        self._agents.use_material(material)
        fp = fingerprint(material.cert_pem)
        log.info("rotated the manager's client certificate (now %s)", fp)
        self.record_system("certificate.renewed", "manager", MANAGER_COMMON_NAME, {"fingerprint": fp},
                           "the manager's client certificate was rotated")

    # -- 3. hosts ----------------------------------------------------------------------

    def _host_due(self, host: HostCertificateRecord, now: dt.datetime) -> bool:
        if not host.cert_pem:
            return True
        cert = x509.load_pem_x509_certificate(host.cert_pem)
        if not self._ca.active.issued(cert):
            return True
        return due_for_renewal(cert.not_valid_before_utc, cert.not_valid_after_utc, now)

    def renew(self, name: str) -> bool:
        """Renew one host now, whatever its lifetime (tests, and a host the admin wants renewed)."""
        with self._check_lock:
            for host in self._hosts():
                if host.name == name:
                    return self._renew(host)
        return False

    def _renew(self, host: HostCertificateRecord) -> bool:
        try:
            prepared = self._agents.call(host.name, host.endpoint, lambda stub, t: stub.PrepareRenewal(
                agent_pb2.PrepareRenewalRequest(), timeout=t), for_caller=False)
            cert_pem = self._ca.sign_agent_csr(prepared.csr_pem, host.name, host.address)
            generation, bundle = self._ca.generation, self._ca.bundle_pem
            self._agents.call(host.name, host.endpoint, lambda stub, t: stub.InstallCertificate(
                agent_pb2.InstallCertificateRequest(cert_pem=cert_pem, ca_bundle_pem=bundle), timeout=t),
                for_caller=False)
        except VirtfleetError as exc:
            log.warning("renewing host %s's certificate failed (the old one stays in use; retrying at the next "
                        "check): %s", host.name, exc)
            return False
        fp, pin = fingerprint(cert_pem), pin_name(cert_pem)
        # The agent serves its previous certificate beside the new one, so a failure to store here
        # (database away) leaves the host reachable by its old pin, and the next check renews again.
        with self._pool.connection() as conn:
            stored = cert_store.store_certificate(
                conn, host.name, cert_pem=cert_pem, fingerprint=fp, pin=pin, trust_generation=generation,
                replacing=host.cert_fingerprint, replaced_serial=serial_hex(host.cert_pem) if host.cert_pem else "")
        if not stored:
            log.warning("host %s changed while its certificate was renewed (removed or enrolled again); "
                        "the new certificate was not stored", host.name)
            return False
        self._agents.repin(host.name, pin, graceful=True)
        log.info("renewed host %s's certificate (now %s)", host.name, fp)
        self.record_system("certificate.renewed", "host", host.name,
                           {"fingerprint": fp, "previous": host.cert_fingerprint}, "the host's certificate was renewed")
        return True

    # -- 4. CA rollover ----------------------------------------------------------------

    def rotate_ca(self) -> PkiStatus:
        with self._check_lock:
            new = self._ca.rotate()
            self._agents.use_material(self._ca.manager_material())
        log.info("new CA %s is active; the old one is retiring", new.fingerprint)
        self.record_system("ca.rotated", "ca", new.fingerprint, {"generation": self._ca.generation},
                           "a new CA signs from now on; the old one is retiring")
        return self.status()

    def _retire_if_done(self, hosts: list[HostCertificateRecord]) -> None:
        if not self._ca.retiring:
            return
        active = self._ca.active
        left = [h.name for h in hosts if not h.cert_pem
                or not active.issued(x509.load_pem_x509_certificate(h.cert_pem))]
        if left or not active.issued(x509.load_pem_x509_certificate(self._agents.material.cert_pem)):
            return
        gone = self._ca.retire()
        self._agents.use_material(self._ca.manager_material())
        for ca in gone:
            log.info("retired CA %s: every host holds a certificate from CA %s", ca.fingerprint, active.fingerprint)
            self.record_system("ca.retired", "ca", ca.fingerprint, {"active": active.fingerprint},
                               "every host holds a certificate from the active CA")
        self._push_trust(self._hosts())

    # -- status ------------------------------------------------------------------------

    def status(self) -> PkiStatus:
        now = _now()
        cas = [CaView(ca.fingerprint, ca.cert.not_valid_before_utc, ca.cert.not_valid_after_utc, state)
               for ca, state in self._ca.cas()]
        hosts = [self._view(h.name, h.cert_pem or b"", h.cert_pin or "", now) for h in self._hosts()]
        manager = self._view(MANAGER_COMMON_NAME, self._agents.material.cert_pem, "", now)
        return PkiStatus(cas, hosts, manager, self._ca.generation)

    def _view(self, name: str, cert_pem: bytes, pin: str, now: dt.datetime) -> CertificateView:
        if not cert_pem:
            return CertificateView(name, "", "", None, None, None, True, pin)
        cert = x509.load_pem_x509_certificate(cert_pem)
        issuer = self._ca.issuer_of(cert_pem)
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        due = issuer is None or issuer.name != self._ca.active.name or due_for_renewal(start, end, now)
        return CertificateView(name, fingerprint(cert_pem), issuer.fingerprint if issuer else "", start, end,
                               renew_at(start, end), due, pin)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
