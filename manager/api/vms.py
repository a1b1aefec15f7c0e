"""VmService: VMs, templates and snapshots for the CLI (one gRPC service, three services behind it).

Like every servicer, each method runs as its request's caller (translating_errors →
virtfleet.deadline): the caller's deadline reaches the agent calls below without
passing through the services' signatures, and a request whose caller gave up while
it queued is not started.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Iterator

from virtfleet.errors import Unimplemented
from virtfleet.rpc import translating_errors
from virtfleet.v1 import vms_pb2, vms_pb2_grpc

from ..domain.migration import check_options
from ..domain.placement import Explanation
from ..service.migrations import MigrationService
from ..service.placement import Placement
from ..service.snapshots import SnapshotService
from ..service.templates import TemplateService
from ..service.vm_runtime import VmRuntime
from ..service.vms import VmService
from ..service.vnics import VnicService
from .snapshots import mac_change_message, snapshot_message
from .templates import template_message
from .vm_messages import RULE_MESSAGE, boot_request, order_message, vm_message
from .vnics import vnic_from_message, vnics_from_messages


def explanation_message(e: Explanation) -> vms_pb2.PlacementExplanation:
    """An accepted host's `reasons` hold what could not be checked on it (its notes and the VM's): an admin sees
    "memory unknown" beside the host chosen; a refused host's hold only why it was refused."""
    return vms_pb2.PlacementExplanation(vm=e.vm, chosen=e.chosen, hosts=[vms_pb2.HostVerdict(
        host=v.host, accepted=v.accepted, reasons=list(v.reasons) if v.reasons else [*v.notes, *e.notes],
        score=v.score, free_memory_mib=max(v.free_memory_mib or 0, 0), vm_count=v.vm_count) for v in e.verdicts])


class VmServicer(vms_pb2_grpc.VmServiceServicer):
    def __init__(self, vms: VmService, runtime: VmRuntime, vnics: VnicService, templates: TemplateService,
                 snapshots: SnapshotService, placement: Placement | None = None,
                 migrations: MigrationService | None = None) -> None:
        self._migrations = migrations
        self._vms = vms
        self._placement = placement
        self._runtime = runtime
        self._vnics = vnics
        self._templates = templates
        self._snapshots = snapshots

    # -- VMs -----------------------------------------------------------------------------------------

    @translating_errors
    def CreateVirtualMachine(self, request, context):
        boot, domain_type = boot_request(request)
        return vm_message(self._vms.create(
            name=request.name, cluster=request.cluster, template=request.template, snapshot=request.snapshot,
            memory_mib=request.memory_mib, vcpus=request.vcpus, nics=vnics_from_messages(request.nics),
            start=request.start, host=request.host, boot=boot, domain_type=domain_type))

    @translating_errors
    def CreateVirtualMachines(self, request, context) -> Iterator[vms_pb2.CreateVirtualMachinesProgress]:
        """Streams one message per committed batch (and per started VM); errors end the stream with a status."""
        for p in self._vms.create_many(name=request.name, count=request.count, cluster=request.cluster,
                                       template=request.template, snapshot=request.snapshot,
                                       batch_size=request.batch_size, start=request.start,
                                       resume=request.resume):
            yield vms_pb2.CreateVirtualMachinesProgress(total=p.total, created=p.created, started=p.started,
                                                        vms=p.vms, rule=RULE_MESSAGE[p.rule])

    @translating_errors
    def ListVirtualMachines(self, request, context):
        return vms_pb2.ListVirtualMachinesResponse(vms=[vm_message(v) for v in self._vms.list()])

    @translating_errors
    def GetVirtualMachine(self, request, context):
        return vm_message(self._vms.get(request.name))

    @translating_errors
    def StartVirtualMachine(self, request, context):
        return vm_message(self._runtime.start(request.name, host=request.host, paused=request.paused))

    @translating_errors
    def StopVirtualMachine(self, request, context):
        return vm_message(self._runtime.stop(request.name, force=request.force, timeout_s=request.timeout_s))

    @translating_errors
    def DeleteVirtualMachine(self, request, context):
        return vms_pb2.DeleteVirtualMachineResponse(released_macs=self._vms.delete(request.name))

    @translating_errors
    def AddNic(self, request, context):
        return vm_message(self._vnics.add_nic(request.vm, vnic_from_message(request.nic, "nic")))

    @translating_errors
    def RemoveNic(self, request, context):
        return vm_message(self._vnics.remove_nic(request.vm, request.nic))

    @translating_errors
    def SetNicLink(self, request, context):
        return vm_message(self._vnics.set_link(request.vm, request.nic, up=request.up))

    @translating_errors
    def SyncNics(self, request, context):
        view, results = self._vnics.sync_nics(request.vm, request.nic)
        return vms_pb2.SyncNicsResponse(vm=vm_message(view), results=[
            vms_pb2.NicSyncResult(nic=r.nic, applied_live=r.applied_live, needs_restart=r.needs_restart)
            for r in results])

    @translating_errors
    def CheckOrder(self, request, context):
        return order_message(self._vms.check_order(request.vm, guest=request.guest))

    @translating_errors
    def ExplainPlacement(self, request, context):
        if self._placement is None:
            raise Unimplemented("this manager has no scheduler")
        return explanation_message(self._placement.explain(request.vm, request.purpose))

    # -- migration (issue 16) ------------------------------------------------------------------------

    @translating_errors
    def MigrateVirtualMachine(self, request, context) -> Iterator[vms_pb2.MigrationProgress]:
        """About one message a second from the source's job; the last has `done`; a failure ends with a status."""
        options = check_options(max_downtime_ms=request.max_downtime_ms, bandwidth_mib_s=request.bandwidth_mib_s,
                                auto_converge=request.auto_converge, post_copy=request.post_copy,
                                timeout_s=request.timeout_s)
        for p in self._migrations.migrate(request.name, request.to, options):
            yield vms_pb2.MigrationProgress(**asdict(p))

    @translating_errors
    def CancelMigration(self, request, context):
        return vm_message(self._migrations.cancel(request.name))

    # -- templates -----------------------------------------------------------------------------------

    @translating_errors
    def CreateTemplate(self, request, context):
        boot, domain_type = boot_request(request)
        return template_message(self._templates.create(
            name=request.name, from_vm=request.from_vm, datacenter=request.datacenter,
            memory_mib=request.memory_mib, vcpus=request.vcpus, nics=vnics_from_messages(request.nics),
            boot=boot, domain_type=domain_type))

    @translating_errors
    def ListTemplates(self, request, context):
        return vms_pb2.ListTemplatesResponse(templates=[template_message(t) for t in self._templates.list()])

    @translating_errors
    def GetTemplate(self, request, context):
        return template_message(self._templates.get(request.name))

    @translating_errors
    def DeleteTemplate(self, request, context):
        self._templates.delete(request.name)
        return vms_pb2.DeleteTemplateResponse()

    # -- snapshots -----------------------------------------------------------------------------------

    @translating_errors
    def CreateSnapshot(self, request, context):
        return snapshot_message(self._snapshots.create(request.vm, request.name))

    @translating_errors
    def ListSnapshots(self, request, context):
        return vms_pb2.ListSnapshotsResponse(snapshots=[snapshot_message(s) for s in self._snapshots.list(request.vm)])

    @translating_errors
    def GetSnapshot(self, request, context):
        return snapshot_message(self._snapshots.get(request.name))

    @translating_errors
    def RestoreSnapshot(self, request, context):
        view, changes = self._snapshots.restore(request.name)
        return vms_pb2.RestoreSnapshotResponse(vm=vm_message(view), mac_changes=[mac_change_message(c) for c in changes])

    @translating_errors
    def DeleteSnapshot(self, request, context):
        self._snapshots.delete(request.name)
        return vms_pb2.DeleteSnapshotResponse()
