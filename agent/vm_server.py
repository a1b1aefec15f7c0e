"""VmAgentService over gRPC: VMs and virtual networks of this host, for the manager only.

Translation only: protobuf in -> typed spec -> agent.virt -> protobuf out. Errors
become one status each; a bad field also travels as a google.rpc.BadRequest field
violation, so the manager can point at the vNIC and field without parsing text.
"""
from __future__ import annotations

import functools
import logging

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from virtfleet.tls import NOT_MANAGER, is_manager
from virtfleet.v1 import vm_pb2, vm_pb2_grpc

from .virt import errors, lifecycle, networks
from .virt.connection import Hypervisor
from .virt.spec import network_from_proto, network_status_to_proto, nic_from_proto, vm_from_proto, vm_status_to_proto

log = logging.getLogger(__name__)

_CODES = {
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.Unsupported: code_pb2.UNIMPLEMENTED,
    errors.HypervisorUnavailable: code_pb2.UNAVAILABLE,
}


def to_status(err: errors.VirtError) -> grpc.Status:
    status = status_pb2.Status(code=_CODES[type(err)], message=err.message)
    if isinstance(err, errors.InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=err.field, description=err.description)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return rpc_status.to_status(status)


def manager_call(method):
    """Only the manager's certificate may call; VM-runtime errors become their status codes."""

    @functools.wraps(method)
    def wrapper(self, request, context: grpc.ServicerContext):
        if not is_manager(context):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, NOT_MANAGER)
        try:
            return method(self, request, context)
        except errors.VirtError as err:
            context.abort_with_status(to_status(err))
        except Exception:
            log.exception("internal error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the agent log")

    return wrapper


def _required(value: str, field: str) -> str:
    if not value:
        raise errors.InvalidArgument(field, "is required")
    return value


class VmAgentServicer(vm_pb2_grpc.VmAgentServiceServicer):
    def __init__(self, hypervisor: Hypervisor) -> None:
        self._hv = hypervisor

    def close(self) -> None:
        self._hv.close()

    @manager_call
    def DefineVm(self, request, context):
        return vm_status_to_proto(lifecycle.define_vm(self._hv, vm_from_proto(request.spec)))

    @manager_call
    def StartVm(self, request, context):
        return vm_status_to_proto(lifecycle.start_vm(self._hv, _required(request.name, "name"), request.paused))

    @manager_call
    def StopVm(self, request, context):
        timeout = float(request.timeout_s) if request.timeout_s else lifecycle.DEFAULT_STOP_TIMEOUT_S
        stopped, destroyed = lifecycle.stop_vm(self._hv, _required(request.name, "name"), timeout)
        return vm_pb2.StopVmResponse(vm=vm_status_to_proto(stopped), destroyed=destroyed)

    @manager_call
    def DestroyVm(self, request, context):
        return vm_status_to_proto(lifecycle.destroy_vm(self._hv, _required(request.name, "name")))

    @manager_call
    def UndefineVm(self, request, context):
        lifecycle.undefine_vm(self._hv, _required(request.name, "name"))
        return vm_pb2.UndefineVmResponse()

    @manager_call
    def ListVms(self, request, context):
        return vm_pb2.ListVmsResponse(vms=[vm_status_to_proto(s) for s in lifecycle.list_vms(self._hv)])

    @manager_call
    def GetVm(self, request, context):
        return vm_status_to_proto(lifecycle.get_vm(self._hv, _required(request.name, "name")))

    @manager_call
    def AttachNic(self, request, context):
        vm = _required(request.vm, "vm")
        if not request.HasField("nic"):
            raise errors.InvalidArgument("nic", "is required")
        return vm_status_to_proto(lifecycle.attach_nic(self._hv, vm, nic_from_proto(request.nic)))

    @manager_call
    def DetachNic(self, request, context):
        vm, nic = _required(request.vm, "vm"), _required(request.nic, "nic")
        return vm_status_to_proto(lifecycle.detach_nic(self._hv, vm, nic))

    @manager_call
    def DefineVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.define_network(self._hv, network_from_proto(request.network)))

    @manager_call
    def StartVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.start_network(self._hv, _required(request.name, "name")))

    @manager_call
    def DestroyVirtualNetwork(self, request, context):
        return network_status_to_proto(networks.destroy_network(self._hv, _required(request.name, "name")))

    @manager_call
    def UndefineVirtualNetwork(self, request, context):
        networks.undefine_network(self._hv, _required(request.name, "name"))
        return vm_pb2.UndefineVirtualNetworkResponse()

    @manager_call
    def ListVirtualNetworks(self, request, context):
        return vm_pb2.ListVirtualNetworksResponse(
            networks=[network_status_to_proto(s) for s in networks.list_networks(self._hv)])


def add_vm_service(server: grpc.Server, libvirt_uri: str) -> VmAgentServicer:
    """Registers VmAgentService; libvirt is connected on first use, so an agent starts without it."""
    servicer = VmAgentServicer(Hypervisor(libvirt_uri))
    vm_pb2_grpc.add_VmAgentServiceServicer_to_server(servicer, server)
    return servicer


SERVICE_NAME = vm_pb2.DESCRIPTOR.services_by_name["VmAgentService"].full_name
