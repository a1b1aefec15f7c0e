"""VmAgentService over gRPC: VMs and virtual networks of this host, for the manager only.

Translation only: protobuf in -> typed spec -> agent.virt -> protobuf out. Every
method passes the one manager-only guard and the one error mapping
(agent.rpc.guard): a bad field travels as a google.rpc.BadRequest field
violation, so the manager can point at the vNIC and field without parsing text.
Every method also runs as its request's caller (virtfleet.deadline), so the VM
lifecycle below starts no change for a caller (the manager) that gave up, and
waits no longer than it does.
"""
from __future__ import annotations

from pathlib import Path

import grpc

from virtfleet import rpc, rules
from virtfleet.errors import InvalidArgument
from virtfleet.v1 import vm_pb2, vm_pb2_grpc

from ..virt import guestagent, lifecycle, migration, networks, nicupdate
from ..virt.connection import Hypervisor
from ..virt.migrationjob import MigrationJob, MigrationOrder
from ..virt.vmchanges import DEFAULT_MAX_ACTIVE
from ..virt.spec import (guest_interfaces_to_proto, network_from_proto, network_status_to_proto, nic_from_proto,
                         vm_from_proto, vm_status_to_proto)
from .guard import manager_only


MAX_GUEST_AGENT_WAIT_S = 60


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    return value


class VmAgentServicer(vm_pb2_grpc.VmAgentServiceServicer):
    def __init__(self, hypervisor: Hypervisor) -> None:
        self._hv = hypervisor

    def close(self) -> None:
        self._hv.close()

    @manager_only
    def DefineVm(self, request, context):
        return vm_status_to_proto(lifecycle.define_vm(self._hv, vm_from_proto(request.spec)))

    @manager_only
    def StartVm(self, request, context):
        return vm_status_to_proto(lifecycle.start_vm(self._hv, _required(request.name, "name"), request.paused))

    @manager_only
    def StopVm(self, request, context):
        timeout = float(rules.stop_timeout(request.timeout_s, "timeout_s"))
        stopped, destroyed = lifecycle.stop_vm(self._hv, _required(request.name, "name"), timeout)
        return vm_pb2.StopVmResponse(vm=vm_status_to_proto(stopped), destroyed=destroyed)

    @manager_only
    def DestroyVm(self, request, context):
        return vm_status_to_proto(lifecycle.destroy_vm(self._hv, _required(request.name, "name")))

    @manager_only
    def UndefineVm(self, request, context):
        lifecycle.undefine_vm(self._hv, _required(request.name, "name"))
        return vm_pb2.UndefineVmResponse()

    @manager_only
    def ListVms(self, request, context):
        return vm_pb2.ListVmsResponse(vms=[vm_status_to_proto(s) for s in lifecycle.list_vms(self._hv)])

    @manager_only
    def GetVm(self, request, context):
        return vm_status_to_proto(lifecycle.get_vm(self._hv, _required(request.name, "name")))

    @manager_only
    def AttachNic(self, request, context):
        vm = _required(request.vm, "vm")
        if not request.HasField("nic"):
            raise InvalidArgument("nic", "is required")
        return vm_status_to_proto(lifecycle.attach_nic(self._hv, vm, nic_from_proto(request.nic)))

    @manager_only
    def DetachNic(self, request, context):
        vm, nic = _required(request.vm, "vm"), _required(request.nic, "nic")
        return vm_status_to_proto(lifecycle.detach_nic(self._hv, vm, nic))

    @manager_only
    def GetGuestInterfaces(self, request, context):
        timeout = rules.int_within(request.timeout_s, 0, MAX_GUEST_AGENT_WAIT_S, "timeout_s", "guest agent wait (s)")
        found = guestagent.guest_interfaces(self._hv, _required(request.vm, "vm"),
                                            timeout or guestagent.DEFAULT_TIMEOUT_S)
        return guest_interfaces_to_proto(found)

    @manager_only
    def UpdateNic(self, request, context):
        vm = _required(request.vm, "vm")
        if not request.HasField("nic"):
            raise InvalidArgument("nic", "is required")
        done = nicupdate.update_nic(self._hv, vm, nic_from_proto(request.nic))
        return vm_pb2.UpdateNicResponse(vm=vm_status_to_proto(done.vm), applied_live=done.applied_live,
                                        needs_restart=list(done.needs_restart))

    @manager_only
    def MigrateVm(self, request, context):
        final = migration.migrate_vm(self._hv, _order_from_proto(request))
        return vm_pb2.MigrateVmResponse(final=_job_to_proto(final))

    @manager_only
    def GetMigrationJob(self, request, context):
        return _job_to_proto(migration.migration_job(self._hv, _required(request.name, "name")))

    @manager_only
    def AbortMigrationJob(self, request, context):
        return vm_pb2.AbortMigrationJobResponse(
            cancelled=migration.abort_migration(self._hv, _required(request.name, "name")))

    @manager_only
    def GetHostResources(self, request, context):
        memory, given_mib, running = migration.host_resources(self._hv)
        networks, filters = migration.libvirt_offers(self._hv)
        return vm_pb2.HostResources(memory_total_mib=memory.total_mib, memory_available_mib=memory.available_mib,
                                    domains_memory_mib=given_mib, domains_running=running,
                                    virtual_networks=networks, network_filters=filters or [],
                                    network_filters_known=filters is not None)

    @manager_only
    def DefineVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.define_network(self._hv, network_from_proto(request.network)))

    @manager_only
    def StartVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.start_network(self._hv, _required(request.name, "name")))

    @manager_only
    def DestroyVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.destroy_network(self._hv, _required(request.name, "name")))

    @manager_only
    def UndefineVirtualNetwork(self, request, context):
        networks.undefine_network(self._hv, _required(request.name, "name"))
        return vm_pb2.UndefineVirtualNetworkResponse()

    @manager_only
    def ListVirtualNetworks(self, request, context):
        return vm_pb2.ListVirtualNetworksResponse(
            networks=[network_status_to_proto(s) for s in networks.list_networks(self._hv)])


def _order_from_proto(request: vm_pb2.MigrateVmRequest) -> MigrationOrder:
    return MigrationOrder(name=request.name, dest_uri=request.dest_uri, migrate_uri=request.migrate_uri,
                          max_downtime_ms=request.max_downtime_ms, bandwidth_mib_s=request.bandwidth_mib_s,
                          auto_converge=request.auto_converge, post_copy=request.post_copy,
                          timeout_s=request.timeout_s, dest_name=request.dest_name)


def _job_to_proto(job: MigrationJob) -> vm_pb2.MigrationJob:
    return vm_pb2.MigrationJob(
        active=job.active, time_elapsed_ms=job.time_elapsed_ms, data_total=job.data_total,
        data_processed=job.data_processed, data_remaining=job.data_remaining, dirty_rate=job.dirty_rate,
        expected_downtime_ms=job.expected_downtime_ms, downtime_ms=job.downtime_ms, memory_bps=job.memory_bps,
        phase=job.phase)


def add_vm_service(server: grpc.Server, libvirt_uri: str, *, vm_changes_max: int = DEFAULT_MAX_ACTIVE,
                   console_dir: Path | None = None, guest_cache: Path | None = None,
                   libvirt_pki_dir: Path | None = None) -> VmAgentServicer:
    """Registers VmAgentService; libvirt is connected on first use, so an agent starts without it."""
    servicer = VmAgentServicer(Hypervisor(libvirt_uri, vm_changes_max=vm_changes_max, console_dir=console_dir,
                                          guest_cache=guest_cache, libvirt_pki_dir=libvirt_pki_dir))
    rpc.add_service(server, vm_pb2_grpc.add_VmAgentServiceServicer_to_server, servicer)
    return servicer


SERVICE_NAME = vm_pb2.DESCRIPTOR.services_by_name["VmAgentService"].full_name
