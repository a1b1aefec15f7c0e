"""Assemble the manager's gRPC server: fleet API, health and reflection."""
from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from virtfleet import rpc

from virtfleet.v1 import (admins_pb2, admins_pb2_grpc, audit_pb2, audit_pb2_grpc, events_pb2, events_pb2_grpc,
                          fleet_pb2, fleet_pb2_grpc,
                          macpool_pb2, macpool_pb2_grpc, vms_pb2, vms_pb2_grpc)
from virtfleet.v1 import profiles_pb2, profiles_pb2_grpc
from virtfleet.v1 import pki_pb2, pki_pb2_grpc

from ..app import ManagerApp
from ..auth.context import CallRecorder, Resolver
from ..auth.interceptor import AuthorizingInterceptor
from .admins import AdminServicer
from .audit import AuditServicer
from .events import EventServicer
from .fleet import FleetServicer
from .macpools import MacPoolServicer
from .pki import PkiServicer
from .profiles import ProfileServicer
from .vms import VmServicer


def build_server(app: ManagerApp, *, resolver: Resolver | None, recorder: CallRecorder | None = None,
                 max_workers: int = 16) -> tuple[grpc.Server, health.HealthServicer]:
    """One server per listener: `resolver` is how that listener's callers prove who they are.

    `resolver=None` serves without authorization or recording: only `bench.api` does that, for the
    baseline it measures the interceptor against; `listeners.serve` always passes one."""
    interceptors = [] if resolver is None else [AuthorizingInterceptor(resolver, recorder)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="api"),
                         interceptors=interceptors)
    rpc.add_service(server, fleet_pb2_grpc.add_FleetServiceServicer_to_server,
                    FleetServicer(app.hosts, app.networks, app.labels, app.maintenance))
    rpc.add_service(server, audit_pb2_grpc.add_AuditServiceServicer_to_server, AuditServicer(app.audits))
    rpc.add_service(server, vms_pb2_grpc.add_VmServiceServicer_to_server,
                    VmServicer(app.vms, app.vm_runtime, app.vnics, app.templates, app.snapshots,
                               placement=app.placement, migrations=app.migrations))
    rpc.add_service(server, macpool_pb2_grpc.add_MacPoolServiceServicer_to_server, MacPoolServicer(app.macpools))
    rpc.add_service(server, admins_pb2_grpc.add_AdminServiceServicer_to_server, AdminServicer(app.admins))
    rpc.add_service(server, events_pb2_grpc.add_EventServiceServicer_to_server, EventServicer(app.event_log))
    rpc.add_service(server, pki_pb2_grpc.add_PkiServiceServicer_to_server, PkiServicer(app.hosts, app.certificates))
    rpc.add_service(server, profiles_pb2_grpc.add_ProfileServiceServicer_to_server, ProfileServicer(app.profiles))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name, health.SERVICE_NAME,
             reflection.SERVICE_NAME, audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
             vms_pb2.DESCRIPTOR.services_by_name["VmService"].full_name,
             macpool_pb2.DESCRIPTOR.services_by_name["MacPoolService"].full_name,
             admins_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
             events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
             pki_pb2.DESCRIPTOR.services_by_name["PkiService"].full_name,
             profiles_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name]
    reflection.enable_server_reflection(names, server)
    for name in ("", names[0]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, health_servicer
