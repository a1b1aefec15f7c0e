"""FleetService: the API the admin CLI speaks."""
from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc

from ..service.hosts import HostService, Report
from ..store.hosts import HostRecord
from .status import translating_errors


def _ts(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def host_message(h: HostRecord) -> fleet_pb2.Host:
    return fleet_pb2.Host(
        name=h.name, address=h.address, endpoint=h.endpoint, datacenter=h.datacenter, cluster=h.cluster,
        status=h.status, cert_fingerprint=h.cert_fingerprint,
        enrolled_at=_ts(h.enrolled_at), last_report_at=_ts(h.last_report_at),
    )


def report_message(r: Report) -> fleet_pb2.HostNetworkReport:
    return fleet_pb2.HostNetworkReport(
        host=r.host, state=r.state, sequence=r.sequence, reported_at=_ts(r.record.reported_at)
    )


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self, hosts: HostService) -> None:
        self._hosts = hosts

    @translating_errors
    def EnrollHost(self, request: fleet_pb2.EnrollHostRequest, context: grpc.ServicerContext):
        e = self._hosts.enroll(
            name=request.name, address=request.address, endpoint=request.endpoint,
            cluster=request.cluster, csr_pem=request.csr_pem,
        )
        return fleet_pb2.EnrollHostResponse(
            host=host_message(e.host), certificate_pem=e.certificate_pem, ca_certificate_pem=e.ca_certificate_pem
        )

    @translating_errors
    def ListHosts(self, request, context):
        return fleet_pb2.ListHostsResponse(hosts=[host_message(h) for h in self._hosts.list()])

    @translating_errors
    def GetHost(self, request, context):
        return host_message(self._hosts.get(request.name))

    @translating_errors
    def DeleteHost(self, request, context):
        self._hosts.delete(request.name)
        return fleet_pb2.DeleteHostResponse()

    @translating_errors
    def GetHostNetworkReport(self, request, context):
        return report_message(self._hosts.network_report(request.name, cached=request.cached))

    @translating_errors
    def SetupHostManagementNetwork(self, request, context):
        result = self._hosts.setup_management(request.name, request.nic, dry_run=request.dry_run)
        return fleet_pb2.SetupHostManagementNetworkResponse(
            changed=result.changed, steps=result.steps,
            report=report_message(result.report) if result.report else None,
        )
