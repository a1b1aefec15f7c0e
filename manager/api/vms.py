"""VmService: VMs, templates and snapshots for the CLI."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.rpc import to_status, translating_errors
from virtfleet.v1 import vm_pb2, vms_pb2, vms_pb2_grpc

from ..errors import VirtfleetError
from ..service.vms import OrderReport, SnapshotView, TemplateView, VmService, VmView
from ..store.vms import NicRecord

log = logging.getLogger(__name__)

_MODE_NAMES = {vm_pb2.DIRECT_MODE_VEPA: "vepa", vm_pb2.DIRECT_MODE_BRIDGE: "bridge",
               vm_pb2.DIRECT_MODE_PRIVATE: "private", vm_pb2.DIRECT_MODE_PASSTHROUGH: "passthrough"}
_MODES = {v: k for k, v in _MODE_NAMES.items()}


def _ts(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def nic_record(m: vms_pb2.Nic) -> NicRecord:
    """What an admin asked for; the service decides the kind and validates."""
    vp = None
    if m.HasField("qbg"):
        vp = {"type": "802.1Qbg", "managerid": m.qbg.managerid, "typeid": m.qbg.typeid,
              "typeidversion": m.qbg.typeidversion, "instanceid": m.qbg.instanceid}
    elif m.HasField("qbh"):
        vp = {"type": "802.1Qbh", "profileid": m.qbh.profileid}
    return NicRecord(name=m.name, position=m.position, kind="", network=m.network or None,
                     virtual_network=m.virtual_network or None, direct_nic=m.direct_nic or None,
                     direct_mode=_MODE_NAMES.get(m.mode), virtualport=vp, model=m.model or "virtio",
                     mac=m.mac or None, pci_address=m.pci_address or None)


def nic_message(n: NicRecord) -> vms_pb2.Nic:
    m = vms_pb2.Nic(name=n.name, network=n.network or "", virtual_network=n.virtual_network or "",
                    direct_nic=n.direct_nic or "", mode=_MODES.get(n.direct_mode or "", 0), model=n.model,
                    mac=n.mac or "", pci_address=n.pci_address or "", host_device=n.host_device or "",
                    position=n.position)
    vp = n.virtualport or {}
    if vp.get("type") == "802.1Qbg":
        m.qbg.CopyFrom(vm_pb2.Virtualport8021Qbg(managerid=vp.get("managerid", 0), typeid=vp.get("typeid", 0),
                                                 typeidversion=vp.get("typeidversion", 0),
                                                 instanceid=vp.get("instanceid", "")))
    elif vp.get("type") == "802.1Qbh":
        m.qbh.CopyFrom(vm_pb2.Virtualport8021Qbh(profileid=vp.get("profileid", "")))
    return m


def vm_message(v: VmView) -> vms_pb2.VirtualMachine:
    vm = v.vm
    return vms_pb2.VirtualMachine(
        name=vm.name, cluster=vm.cluster, host=vm.host or "", state=vm.state, memory_mib=vm.memory_mib,
        vcpus=vm.vcpus, source_kind=vm.source_kind or "", source_name=vm.source_name or "",
        nic_rule=vm.nic_rule or "", nics=[nic_message(n) for n in v.nics], created_at=_ts(vm.created_at),
        first_boot_at=_ts(vm.first_boot_at))


def template_message(t: TemplateView) -> vms_pb2.Template:
    r = t.template
    return vms_pb2.Template(name=r.name, datacenter=r.datacenter, memory_mib=r.memory_mib, vcpus=r.vcpus,
                            source_vm=r.source_vm or "", nics=[nic_message(n) for n in t.nics],
                            created_at=_ts(r.created_at))


def snapshot_message(s: SnapshotView) -> vms_pb2.Snapshot:
    r = s.snapshot
    return vms_pb2.Snapshot(name=r.name, vm=r.vm, memory_mib=r.memory_mib, vcpus=r.vcpus,
                            nics=[nic_message(n) for n in s.nics], created_at=_ts(r.created_at))


def order_message(r: OrderReport) -> vms_pb2.CheckOrderResponse:
    return vms_pb2.CheckOrderResponse(
        vm=r.vm.name, source_kind=r.vm.source_kind or "", source_name=r.vm.source_name or "", rule=r.rule,
        in_order=not r.mismatches,
        mismatches=[vms_pb2.OrderMismatch(position=m.position, field=m.field, expected=m.expected, found=m.found)
                    for m in r.mismatches],
        expected=[nic_message(n) for n in r.expected], actual=[nic_message(n) for n in r.actual])


class VmServicer(vms_pb2_grpc.VmServiceServicer):
    def __init__(self, vms: VmService) -> None:
        self._vms = vms

    @translating_errors
    def CreateVirtualMachine(self, request, context):
        return vm_message(self._vms.create(
            name=request.name, cluster=request.cluster, template=request.template, snapshot=request.snapshot,
            memory_mib=request.memory_mib, vcpus=request.vcpus, nics=[nic_record(n) for n in request.nics],
            start=request.start, host=request.host))

    def CreateVirtualMachines(self, request, context: grpc.ServicerContext) -> Iterator[vms_pb2.CreateVirtualMachinesProgress]:
        """Streams one message per committed batch (and per started VM); errors end the stream with a status."""
        try:
            for p in self._vms.create_many(name=request.name, count=request.count, cluster=request.cluster,
                                           template=request.template, snapshot=request.snapshot,
                                           batch_size=request.batch_size, start=request.start):
                yield vms_pb2.CreateVirtualMachinesProgress(total=p.total, created=p.created, started=p.started,
                                                            vms=p.vms, rule=p.rule)
        except VirtfleetError as err:
            context.abort_with_status(to_status(err))
        except Exception:
            log.exception("internal error in CreateVirtualMachines")
            context.abort(grpc.StatusCode.INTERNAL, "internal error in CreateVirtualMachines; see the manager log")

    @translating_errors
    def ListVirtualMachines(self, request, context):
        return vms_pb2.ListVirtualMachinesResponse(vms=[vm_message(v) for v in self._vms.list()])

    @translating_errors
    def GetVirtualMachine(self, request, context):
        return vm_message(self._vms.get(request.name))

    @translating_errors
    def StartVirtualMachine(self, request, context):
        return vm_message(self._vms.start(request.name, host=request.host, paused=request.paused))

    @translating_errors
    def StopVirtualMachine(self, request, context):
        return vm_message(self._vms.stop(request.name, force=request.force, timeout_s=request.timeout_s))

    @translating_errors
    def DeleteVirtualMachine(self, request, context):
        return vms_pb2.DeleteVirtualMachineResponse(released_macs=self._vms.delete(request.name))

    @translating_errors
    def AddNic(self, request, context):
        return vm_message(self._vms.add_nic(request.vm, nic_record(request.nic)))

    @translating_errors
    def RemoveNic(self, request, context):
        return vm_message(self._vms.remove_nic(request.vm, request.nic))

    @translating_errors
    def CheckOrder(self, request, context):
        return order_message(self._vms.check_order(request.vm))

    @translating_errors
    def CreateTemplate(self, request, context):
        return template_message(self._vms.create_template(
            name=request.name, from_vm=request.from_vm, datacenter=request.datacenter,
            memory_mib=request.memory_mib, vcpus=request.vcpus, nics=[nic_record(n) for n in request.nics]))

    @translating_errors
    def ListTemplates(self, request, context):
        return vms_pb2.ListTemplatesResponse(templates=[template_message(t) for t in self._vms.templates()])

    @translating_errors
    def GetTemplate(self, request, context):
        return template_message(self._vms.template(request.name))

    @translating_errors
    def DeleteTemplate(self, request, context):
        self._vms.delete_template(request.name)
        return vms_pb2.DeleteTemplateResponse()

    @translating_errors
    def CreateSnapshot(self, request, context):
        return snapshot_message(self._vms.create_snapshot(request.vm, request.name))

    @translating_errors
    def ListSnapshots(self, request, context):
        return vms_pb2.ListSnapshotsResponse(snapshots=[snapshot_message(s) for s in self._vms.snapshots(request.vm)])

    @translating_errors
    def GetSnapshot(self, request, context):
        return snapshot_message(self._vms.snapshot(request.name))

    @translating_errors
    def RestoreSnapshot(self, request, context):
        view, changes = self._vms.restore_snapshot(request.name)
        return vms_pb2.RestoreSnapshotResponse(
            vm=vm_message(view),
            mac_changes=[vms_pb2.MacChange(nic=c.nic, old_mac=c.old_mac, new_mac=c.new_mac) for c in changes])

    @translating_errors
    def DeleteSnapshot(self, request, context):
        self._vms.delete_snapshot(request.name)
        return vms_pb2.DeleteSnapshotResponse()
