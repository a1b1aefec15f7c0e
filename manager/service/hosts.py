"""Host inventory and the management network: enroll, list, show, report, set up; host certificates.

Two ways to enroll. Offline (`host add --pki-out`): the CLI makes the key and
sends a CSR with EnrollHost. With a token (the default): EnrollHost makes the
host "pending" and returns a one-time token; the host makes its key and sends
its CSR with the token to the enrollment listener (`enroll_with_token`). Either
way the certificate's pin is stored with it (manager/pki.py) and the agent
channels use it; `revoke_certificate` and `delete` revoke at once (an event,
certificate.revoked). Labels of the host's NICs may come with it (`host add --nic-label`):
stored with the host in the same transaction, they put their networks on the host
once it reports (service/labelcatchup.py). The CA certificates returned are every CA trusted now (during
a rollover the manager's client certificate may still be from the retiring one),
and the host is recorded as holding that trust generation (service/certificates.py).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Callable

from google.protobuf.json_format import MessageToDict, ParseDict
from psycopg_pool import ConnectionPool

from virtfleet.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied, Unavailable
from virtfleet.v1 import agent_pb2, netstate_pb2

from ..agents import AgentClients, HostMonitor
from ..domain.enrolltoken import check_token, new_token, token_hash
from ..domain.labels import check_nic_labels
from ..domain.hostinput import check_address, check_host_name, check_new_host_name, endpoint_for
from ..pki import CertificateAuthority, fingerprint, load_csr, pin_name, serial_hex
from ..store import certificates as cert_store
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.database import DatabaseUnreachable, reading
from ..store.hosts import HostRecord, ReportRecord, TokenRefused, TrustedCertificate
from .networks import MANAGEMENT_NETWORK, NetworkService
from .readmodel import ReadModel

HOST_TABLES = ("hosts", "clusters", "datacenters")   # what a HostRecord is made of

log = logging.getLogger(__name__)


DEFAULT_TOKEN_TTL_S = 3600.0


@dataclass(frozen=True)
class Enrollment:
    """With a CSR: the certificate; without: the one-time token the host enrolls with."""

    host: HostRecord
    certificate_pem: bytes
    ca_certificate_pem: bytes
    token: str = ""
    token_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Revocation:
    host: str
    fingerprint: str   # "" when the host held no certificate


@dataclass(frozen=True)
class Report:
    host: str
    sequence: int
    state: netstate_pb2.NetworkState
    record: ReportRecord


@dataclass(frozen=True)
class ManagementSetup:
    changed: bool
    steps: list[str]
    report: Report | None


class HostService:
    def __init__(self, pool: ConnectionPool, ca: CertificateAuthority, agents: AgentClients, monitor: HostMonitor,
                 networks: NetworkService, *, token_ttl_s: float = DEFAULT_TOKEN_TTL_S, enroll_endpoint: str = "",
                 record_system: Callable[..., None] | None = None, read_model: ReadModel | None = None):
        self._listed = read_model.group("hosts", HOST_TABLES, lambda conn: tuple(host_store.list_hosts(conn))) \
            if read_model else None
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self._token_ttl_s = token_ttl_s
        self.enroll_endpoint = enroll_endpoint   # where hosts send their token (setting enroll_listen)
        self._pool = pool
        self._networks = networks
        self._ca = ca
        self._agents = agents
        self._monitor = monitor

    def enroll(self, *, name: str, address: str, endpoint: str, cluster: str, csr_pem: bytes,
               nic_labels: Sequence[tuple[str, str]] = ()) -> Enrollment:
        """With `csr_pem`, enrolled at once; without, pending with a one-time token (a host whose
        certificate was revoked, or still pending, gets a new token the same way). `nic_labels`
        (NIC, label) are stored with it; a label it had on another NIC moves to the one given."""
        check_host_name(name)
        address = check_address(address)
        endpoint = endpoint_for(address, endpoint)
        labels = check_nic_labels(nic_labels)
        if csr_pem:
            load_csr(csr_pem)   # refused before anything is written
        with self._pool.connection() as conn:
            check_new_host_name(name, host_store.admin_names(conn))
            if not csr_pem:
                return self._new_token(conn, name=name, address=address, endpoint=endpoint, cluster=cluster,
                                       labels=labels)
            cert = self._ca.sign_agent_csr(csr_pem, name, address)
            with conn.transaction():
                host = host_store.insert_host(conn, name=name, address=address, endpoint=endpoint,
                                              cluster=cluster or "Default", cert=_trusted(cert))
                _put_labels(conn, host, labels)
                cert_store.set_trust_generation(conn, name, self._ca.generation)
                host = host_store.get_host(conn, name)
        log.info("enrolled host %s (%s) at %s", name, address, endpoint)
        self._agents.repin(name, host.cert_pin)
        self._monitor.watch(name, endpoint)
        return Enrollment(host, cert, self._ca.bundle_pem)

    def _new_token(self, conn, *, name: str, address: str, endpoint: str, cluster: str,
                   labels: list[tuple[str, str]]) -> Enrollment:
        token = new_token()
        with conn.transaction():
            try:
                host = host_store.get_host(conn, name, lock=True)
            except NotFound:
                host = host_store.insert_host(conn, name=name, address=address, endpoint=endpoint,
                                              cluster=cluster or "Default", cert=None)
            else:
                if host.status not in ("pending", "revoked") or host.address != address:
                    raise AlreadyExists(f"a host with name {name!r} is already enrolled")
                host_store.drop_unused_tokens(conn, host.id)
            _put_labels(conn, host, labels)
            expires_at = host_store.insert_token(conn, host.id, token_hash(token), self._token_ttl_s)
        log.info("host %s (%s) waits for its enrollment, token valid until %s", name, address, expires_at)
        return Enrollment(host, b"", self._ca.bundle_pem, token=token, token_expires_at=expires_at)

    def enroll_with_token(self, token: str, csr_pem: bytes) -> Enrollment:
        """The host's own request: its CSR and the token. Using the token and trusting the certificate
        are one transaction; a refused token changes nothing."""
        check_token(token)
        load_csr(csr_pem)
        with self._pool.connection() as conn, conn.transaction():
            try:
                claim = host_store.claim_token(conn, token_hash(token))
            except TokenRefused as exc:
                raise PermissionDenied(_refused(exc.why)) from None
            if claim.used:
                raise PermissionDenied(_refused("already used"))
            if claim.expired:
                raise PermissionDenied(_refused("expired"))
            host = claim.host
            cert = self._ca.sign_agent_csr(csr_pem, host.name, host.address)
            host_store.use_token(conn, claim.token_id)
            host_store.trust_certificate(conn, host.name, _trusted(cert))
            cert_store.set_trust_generation(conn, host.name, self._ca.generation)
            host = host_store.get_host(conn, host.name)
        log.info("host %s enrolled with its token; certificate %s", host.name, host.cert_fingerprint)
        self._agents.repin(host.name, host.cert_pin)
        self._monitor.watch(host.name, host.endpoint)
        return Enrollment(host, cert, self._ca.bundle_pem)

    def revoke_certificate(self, name: str, *, reason: str = "revoked") -> Revocation:
        """From now on the manager trusts no certificate for the host: its channels close at once,
        and it must enroll again with a new token."""
        check_host_name(name)
        with self._pool.connection() as conn, conn.transaction():
            pem = host_store.certificate_pem(conn, name)
            revoked = host_store.revoke_certificate(conn, name, reason, serial=serial_hex(pem) if pem else "")
        self._monitor.unwatch(name)
        self._agents.repin(name, None)
        log.warning("revoked the certificate of host %s (%s)", name, revoked or "it held none")
        if revoked:
            self._record_system("certificate.revoked", "host", name, {"fingerprint": revoked, "reason": reason},
                                "the manager trusts no certificate for the host until it enrolls again")
        return Revocation(name, revoked or "")

    def list(self) -> list[HostRecord]:
        listed = self._listed.get() if self._listed is not None else None
        if listed is not None:
            return list(listed)
        with reading(self._pool) as conn:
            return host_store.list_hosts(conn)

    def get(self, name: str) -> HostRecord:
        check_host_name(name)
        with reading(self._pool) as conn:
            return host_store.get_host(conn, name)

    def nic_labels(self, name: str) -> list[tuple[str, str]]:
        """(NIC, label) pairs of the host (service/labels.py)."""
        check_host_name(name)
        with reading(self._pool) as conn:
            return net_store.nic_labels(conn, host_store.get_host(conn, name).id)

    def delete(self, name: str) -> None:
        """The host's certificate is recorded revoked in the same transaction."""
        check_host_name(name)
        with self._pool.connection() as conn, conn.transaction():
            pem = host_store.certificate_pem(conn, name)
            revoked = host_store.revoke_certificate(conn, name, "host removed", serial=serial_hex(pem) if pem else "")
            host_store.delete_host(conn, name)
        self._monitor.unwatch(name)
        self._agents.forget(name)
        self._networks.operational.forget(name)
        log.info("removed host %s", name)
        if revoked:
            self._record_system("certificate.revoked", "host", name, {"fingerprint": revoked, "reason": "host removed"},
                                "the removed host's certificate is trusted no more")

    def activate(self, name: str) -> HostRecord:
        """Back in service after maintenance (or a maintenance that was being prepared): placement may use the
        host again once its monitored status is up. A host in service is refused: nothing would change."""
        check_host_name(name)
        with self._pool.connection() as conn, conn.transaction():
            was = host_store.set_maintenance(conn, name, "")
            if not was:
                raise FailedPrecondition(f"host {name} is not in maintenance")
            host = host_store.get_host(conn, name)
        log.info("host %s activated (was %s); its status is %s", name, was or "in service", host.status)
        return host

    def network_report(self, name: str, *, cached: bool = False) -> Report:
        """The host's network state; with the database away, the one its agent's stream keeps in memory."""
        try:
            return self._report(name, cached)
        except DatabaseUnreachable:
            held = self._monitor.current(name)
            if held is None:
                raise
            log.info("database unreachable: host %s's report is served from the monitor's memory", name)
            return Report(name, held.sequence, held.state, ReportRecord(name, held.sequence, held.reported_at, {}))

    def _report(self, name: str, cached: bool) -> Report:
        host = self.get(name)
        if not cached:
            try:
                state = self._agents.call(
                    host.name, host.endpoint,
                    lambda stub, t: stub.GetNetworkState(agent_pb2.GetNetworkStateRequest(), timeout=t),
                )
                self._save(host.name, state)
            except Unavailable:
                log.info("host %s unreachable, returning its stored report", name)
        return self._stored_report(host.name)

    def setup_management(self, name: str, nic: str, *, dry_run: bool = False) -> ManagementSetup:
        host = self.get(name)
        request = agent_pb2.SetupManagementNetworkRequest(nic=nic or "eth0", bridge=MANAGEMENT_NETWORK, dry_run=dry_run)
        sent_at = self._networks.lost_replies.position(host.name)
        try:
            reply = self._agents.call(
                host.name, host.endpoint, lambda stub, t: stub.SetupManagementNetwork(request, timeout=t)
            )
        except Unavailable as exc:
            if dry_run:
                raise
            raise self._networks.reply_lost(host.name, sent_at, [MANAGEMENT_NETWORK], [], exc) from None
        if dry_run:
            return ManagementSetup(False, list(reply.steps), None)
        self._save(host.name, reply.state)
        self._networks.record_management(host.name, request.nic, reply.state)
        log.info("management network on %s: %s", name, "created" if reply.changed else "already in place")
        return ManagementSetup(reply.changed, list(reply.steps), self._stored_report(host.name))

    def _save(self, name: str, state: netstate_pb2.NetworkState) -> None:
        with self._pool.connection() as conn:
            record = host_store.get_report(conn, name)
            sequence = record.sequence if record else 0
            host_store.save_report(conn, name, sequence, MessageToDict(state, preserving_proto_field_name=True))

    def _stored_report(self, name: str) -> Report:
        with self._pool.connection() as conn:
            record = host_store.get_report(conn, name)
        if record is None:
            raise Unavailable(f"host {name} has not reported its network state yet")
        state = ParseDict(record.state, netstate_pb2.NetworkState(), ignore_unknown_fields=True)
        return Report(name, record.sequence, state, record)


def _put_labels(conn, host: HostRecord, labels: list[tuple[str, str]]) -> None:
    for nic, label in labels:
        net_store.put_nic_label(conn, host.id, nic, label)
    if labels:
        log.info("host %s: NIC labels %s, applied at its first report", host.name,
                 ", ".join(f"{nic}={label}" for nic, label in labels))


def _trusted(cert_pem: bytes) -> TrustedCertificate:
    return TrustedCertificate(cert_pem, fingerprint(cert_pem), pin_name(cert_pem))


def _refused(why: str) -> str:
    return f"enrollment token refused: {why} (ask an admin for a new one: `virtfleet host add`)"
