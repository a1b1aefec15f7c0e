"""VMs and the order check in the contract's messages; the rule travels as the `NicRule` enum."""
from __future__ import annotations


from virtfleet.v1 import vms_pb2

from ..domain.vmorder import Rule
from ..service.vms import OrderReport, VmView
from .timestamps import timestamp
from .vnics import vnic_message

RULE_MESSAGE = {Rule.PCI_ORDER: vms_pb2.NIC_RULE_PCI_ORDER, Rule.NAME_ORDER: vms_pb2.NIC_RULE_NAME_ORDER,
                Rule.SNAPSHOT_NEW_MACS: vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS}



def stored_rule_message(name: str | None) -> int:
    """The rule a VM was made by, as the store keeps it (the Rule's name)."""
    return RULE_MESSAGE[Rule[name]] if name else vms_pb2.NIC_RULE_UNSPECIFIED


def vm_message(v: VmView) -> vms_pb2.VirtualMachine:
    vm = v.vm
    return vms_pb2.VirtualMachine(
        name=vm.name, cluster=vm.cluster, host=vm.host or "", state=vm.state, memory_mib=vm.memory_mib,
        vcpus=vm.vcpus, source_kind=vm.source_kind or "", source_name=vm.source_name or "",
        nic_rule=stored_rule_message(vm.nic_rule), nics=[vnic_message(n) for n in v.nics],
        created_at=timestamp(vm.created_at), first_boot_at=timestamp(vm.first_boot_at))


def order_message(r: OrderReport) -> vms_pb2.CheckOrderResponse:
    return vms_pb2.CheckOrderResponse(
        vm=r.vm.name, source_kind=r.vm.source_kind or "", source_name=r.vm.source_name or "",
        rule=RULE_MESSAGE[r.rule], in_order=not r.mismatches,
        mismatches=[vms_pb2.OrderMismatch(position=m.position, field=m.field, expected=m.expected, found=m.found)
                    for m in r.mismatches],
        expected=[vnic_message(n) for n in r.expected], actual=[vnic_message(n) for n in r.actual])
