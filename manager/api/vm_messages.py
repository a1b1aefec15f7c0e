"""VMs and the order check in the contract's messages; the rule travels as the `NicRule` enum."""
from __future__ import annotations

from typing import Mapping, Sequence

from virtfleet.v1 import vm_pb2, vms_pb2

from ..domain.boot import BootSource, DomainType, check_domain_type
from ..domain.guestnames import GuestNic
from ..domain.vmorder import Rule
from ..domain.vnic import Vnic
from ..service.boot_messages import boot_from_message, boot_message
from ..service.vms import OrderReport, VmView
from .timestamps import timestamp
from .vnics import vnic_message

RULE_MESSAGE = {Rule.PCI_ORDER: vms_pb2.NIC_RULE_PCI_ORDER, Rule.NAME_ORDER: vms_pb2.NIC_RULE_NAME_ORDER,
                Rule.SNAPSHOT_NEW_MACS: vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS}



def stored_rule_message(name: str | None) -> int:
    """The rule a VM was made by, as the store keeps it (the Rule's name)."""
    return RULE_MESSAGE[Rule[name]] if name else vms_pb2.NIC_RULE_UNSPECIFIED


def boot_request(request: vms_pb2.CreateVirtualMachineRequest | vms_pb2.CreateTemplateRequest
                 ) -> tuple[BootSource | None, DomainType | None]:
    """A create request's boot source (None: not given, inherit) and domain type (None: not given)."""
    boot = boot_from_message(request.boot) if request.HasField("boot") else None
    return boot, check_domain_type(request.domain_type)


def put_boot(msg: vms_pb2.VirtualMachine | vms_pb2.Template | vms_pb2.Snapshot, boot: BootSource,
             domain_type: DomainType) -> None:
    """`boot` stays unset for a diskless one, as the contract says."""
    wire: vm_pb2.BootSource | None = boot_message(boot)
    if wire is not None:
        msg.boot.CopyFrom(wire)
    msg.domain_type = domain_type.value


def guest_nic_messages(nics: Sequence[Vnic], guest: Mapping[str, GuestNic | str]) -> list[vms_pb2.Nic]:
    """vNIC messages with what the guest calls each (a GuestNic with its addresses, or a bare name)."""
    out = []
    for n in nics:
        m = vnic_message(n)
        seen = guest.get(n.name)
        if isinstance(seen, GuestNic):
            m.guest_name = seen.name
            m.guest_ips.extend(seen.ips)
        elif seen:
            m.guest_name = seen
        out.append(m)
    return out


def vm_message(v: VmView) -> vms_pb2.VirtualMachine:
    """Guest addresses only when the guest just said them: last-seen ones of a stopped VM would mislead."""
    vm = v.vm
    guest = v.guest if v.guest_live else {name: g.name for name, g in v.guest.items()}
    msg = vms_pb2.VirtualMachine(
        name=vm.name, cluster=vm.cluster, host=vm.host or "", state=vm.state, memory_mib=vm.memory_mib,
        vcpus=vm.vcpus, source_kind=vm.source_kind or "", source_name=vm.source_name or "",
        nic_rule=stored_rule_message(vm.nic_rule), nics=guest_nic_messages(v.nics, guest),
        created_at=timestamp(vm.created_at), first_boot_at=timestamp(vm.first_boot_at),
        migrating_to=vm.migrating_to or "")
    put_boot(msg, vm.boot, vm.domain_type)
    return msg


def order_message(r: OrderReport) -> vms_pb2.CheckOrderResponse:
    return vms_pb2.CheckOrderResponse(
        vm=r.vm.name, source_kind=r.vm.source_kind or "", source_name=r.vm.source_name or "",
        rule=RULE_MESSAGE[r.rule], in_order=not r.mismatches,
        mismatches=[vms_pb2.OrderMismatch(position=m.position, field=m.field, expected=m.expected, found=m.found)
                    for m in r.mismatches],
        expected=guest_nic_messages(r.expected, r.expected_guest), actual=guest_nic_messages(r.actual, r.actual_guest))
