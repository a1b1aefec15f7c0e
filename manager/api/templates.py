"""Templates in the contract's messages."""
from __future__ import annotations

from virtfleet.v1 import vms_pb2

from ..service.templates import TemplateView
from .timestamps import timestamp
from .vm_messages import guest_nic_messages, put_boot


def template_message(t: TemplateView) -> vms_pb2.Template:
    """Each vNIC's `guest_name` is its source VM's guest's name for it, when the template keeps one."""
    r = t.template
    msg = vms_pb2.Template(name=r.name, datacenter=r.datacenter, memory_mib=r.memory_mib, vcpus=r.vcpus,
                           source_vm=r.source_vm or "", nics=guest_nic_messages(t.nics, t.guest_names),
                           created_at=timestamp(r.created_at))
    put_boot(msg, r.boot, r.domain_type)
    return msg
