"""AgentService over gRPC: the manager's only door into this host's networking, and the server around it.

Translation only: protobuf in → agent.net → protobuf out. Every method passes
the one manager-only guard and the one error mapping (agent.rpc.guard).
"""
from __future__ import annotations

import os
import platform
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pyroute2 import IPRoute

from virtfleet import keepalive, rpc
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, hostnet_pb2

from .. import __version__
from ..config import AgentConfig
from ..net.hostnet.changes import HostNetworks
from ..net.report.capabilities import kernel_features, nics
from ..net.report.state import read_state
from ..net.report.watch import StateWatcher
from .certificates import CertificateRpcs, ServerCertificates
from .guard import ManagerOnlyInterceptor, manager_only
from .vm import SERVICE_NAME as VM_SERVICE_NAME, add_vm_service

DEFAULT_MANAGEMENT_BRIDGE = "ovirtmgmt"


class AgentServicer(CertificateRpcs, agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, cfg: AgentConfig, watcher: StateWatcher, certificates: ServerCertificates) -> None:
        self.certificates = certificates
        self._watcher = watcher
        self._ipr = IPRoute()
        self._lock = threading.Lock()  # one host change (or read) at a time on the shared socket
        self.hostnet = HostNetworks(self._ipr, self._lock, journal_path=cfg.journal_path,
                                    config_path=cfg.netconfig_path, features=lambda: kernel_features(self._ipr))

    def close(self) -> None:
        self.hostnet.cancel_timers()
        self._ipr.close()

    @manager_only
    def GetCapabilities(self, request, context):
        with self._lock:
            state = read_state(self._ipr)
            features = kernel_features(self._ipr)
        return agent_pb2.Capabilities(
            hostname=platform.node(), agent_version=__version__, kernel_release=os.uname().release,
            kernel_features=features, nics=nics(state),
        )

    @manager_only
    def GetNetworkState(self, request, context):
        with self._lock:
            return read_state(self._ipr)

    @manager_only
    def WatchNetworkState(self, request, context):
        events = self._watcher.stream(request.resume_after, request.epoch)
        context.add_callback(events.close)  # a cancelled stream wakes the waiting generator
        try:
            for event in events.events(request.heartbeat_s or None):
                event.config_generation = self.hostnet.generation  # the manager finds lost replies by it
                yield event
        finally:
            events.close()

    @manager_only
    def SetupManagementNetwork(self, request, context):
        result = self.hostnet.setup_management(request.nic, request.bridge or DEFAULT_MANAGEMENT_BRIDGE,
                                               dry_run=request.dry_run)
        return agent_pb2.SetupManagementNetworkResponse(changed=result.changed, steps=result.steps, state=result.state)

    @manager_only
    def SetupNetworks(self, request, context):
        return self.hostnet.setup(request)

    @manager_only
    def CommitNetworks(self, request, context):
        return hostnet_pb2.CommitNetworksResponse(config=self.hostnet.commit(request.change_id))

    @manager_only
    def GetNetworkConfig(self, request, context):
        return self.hostnet.config


def build_server(cfg: AgentConfig, material: TlsMaterial, watcher: StateWatcher):
    """AgentService, VmAgentService, health and reflection on one mutual-TLS listener (not started),
    every method of it for the manager's certificate only.

    Its credentials are dynamic (agent.rpc.certificates): a renewed certificate is served without a restart.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="agent"),
                         options=keepalive.SERVER_OPTIONS, interceptors=[ManagerOnlyInterceptor()])
    certificates = ServerCertificates(cfg.pki_dir, material, libvirt_pki_dir=cfg.libvirt_pki, libvirt_uri=cfg.libvirt_uri)
    servicer = AgentServicer(cfg, watcher, certificates)
    rpc.add_service(server, agent_pb2_grpc.add_AgentServiceServicer_to_server, servicer)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_vm_service(server, cfg.libvirt_uri, vm_changes_max=cfg.vm_changes_max, console_dir=cfg.console_dir,
                   guest_cache=cfg.guest_cache_dir, libvirt_pki_dir=cfg.libvirt_pki)
    service_name = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
    reflection.enable_server_reflection([service_name, VM_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME],
                                        server)
    for name in ("", service_name, VM_SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if cfg.listen.startswith("unix://"):
        Path(cfg.listen.removeprefix("unix://")).unlink(missing_ok=True)
    server.add_secure_port(cfg.listen, certificates.credentials())
    return server, servicer, health_servicer


def build_health_socket(cfg: AgentConfig, health_servicer: health.HealthServicer) -> grpc.Server | None:
    """grpc.health.v1 alone on a local unix socket (mode 0600: root's systemd and monitoring), no TLS;
    None when the setting `health_socket` is empty. Not started."""
    if not cfg.health_socket:
        return None
    path = Path(cfg.health_socket)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    old_umask = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix://{path}")
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server
