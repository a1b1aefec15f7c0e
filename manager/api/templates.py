"""Templates in the contract's messages."""
from __future__ import annotations

from virtfleet.v1 import vms_pb2

from ..service.templates import TemplateView
from .timestamps import timestamp
from .vnics import vnic_message


def template_message(t: TemplateView) -> vms_pb2.Template:
    r = t.template
    return vms_pb2.Template(name=r.name, datacenter=r.datacenter, memory_mib=r.memory_mib, vcpus=r.vcpus,
                            source_vm=r.source_vm or "", nics=[vnic_message(n) for n in t.nics],
                            created_at=timestamp(r.created_at))
