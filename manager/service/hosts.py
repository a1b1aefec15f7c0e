"""Host inventory and the management network: enroll, list, show, report, set up."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from google.protobuf.json_format import MessageToDict, ParseDict
from psycopg_pool import ConnectionPool

from virtfleet.errors import InvalidArgument, Unavailable
from virtfleet.v1 import agent_pb2, netstate_pb2

from ..agents import AgentClients, HostMonitor
from ..domain.hostinput import check_address, check_host_name, endpoint_for
from ..pki import CertificateAuthority, fingerprint, pin_name
from ..store import certificates as cert_store
from ..store import hosts as host_store
from ..store.database import DatabaseUnreachable
from ..store.hosts import HostRecord, ReportRecord
from .networks import MANAGEMENT_NETWORK, NetworkService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enrollment:
    host: HostRecord
    certificate_pem: bytes
    ca_certificate_pem: bytes


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
                 networks: NetworkService):
        self._pool = pool
        self._networks = networks
        self._ca = ca
        self._agents = agents
        self._monitor = monitor

    def enroll(self, *, name: str, address: str, endpoint: str, cluster: str, csr_pem: bytes) -> Enrollment:
        name = check_host_name(name)
        address = check_address(address)
        endpoint = endpoint_for(address, endpoint)
        if not csr_pem:
            raise InvalidArgument("csr_pem", "a certificate signing request is required")
        cert = self._ca.sign_agent_csr(csr_pem, name, address)
        with self._pool.connection() as conn:
            host = host_store.insert_host(
                conn, name=name, address=address, endpoint=endpoint,
                cluster=cluster or "Default", fingerprint=fingerprint(cert),
            )
            cert_store.store_certificate(conn, name, cert_pem=cert.decode(), fingerprint=fingerprint(cert),
                                         pin=pin_name(cert), trust_generation=self._ca.generation)
        log.info("enrolled host %s (%s) at %s", name, address, endpoint)
        self._monitor.watch(name, endpoint)
        return Enrollment(host, cert, self._ca.bundle_pem)

    def list(self) -> list[HostRecord]:
        with self._pool.connection() as conn:
            return host_store.list_hosts(conn)

    def get(self, name: str) -> HostRecord:
        check_host_name(name)
        with self._pool.connection() as conn:
            return host_store.get_host(conn, name)

    def delete(self, name: str) -> None:
        check_host_name(name)
        with self._pool.connection() as conn:
            host_store.delete_host(conn, name)
        self._monitor.unwatch(name)
        self._agents.forget(name)
        log.info("removed host %s", name)

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
