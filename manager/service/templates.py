"""Templates: vNICs (with the PCI addresses of a VM's first boot when made from one), memory, vCPUs."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from psycopg_pool import ConnectionPool

from virtfleet import rules
from virtfleet.errors import InvalidArgument

from ..domain.boot import DISKLESS, BootSource, DomainType, check_boot
from ..domain.vmorder import SourceKind, source_guest_order
from ..domain.vnic import Vnic, check_vnics
from ..store import guestnames as guest_store
from ..store import profiles as profile_store
from ..store import templates as store
from ..store import vms as vm_store
from ..store import vnics as vnic_store
from ..store.templates import TemplateRecord
from .vmobjects import DEFAULT_MEMORY_MIB, attached_network_id, with_profile

DEFAULT_DATACENTER = "Default"


@dataclass(frozen=True)
class TemplateView:
    template: TemplateRecord
    nics: list[Vnic]          # in the guest order a VM made from it will have
    guest_names: dict[str, str] = field(default_factory=dict)   # vNIC → its source VM's guest's name for it


def refuse_macs(nics: Sequence[Vnic]) -> None:
    """A template carries no MACs: every VM made from it gets fresh ones from its cluster's pool.

    Refused rather than dropped: a MAC an admin typed and then silently lost is a surprise, and
    a kept one would be given to every VM made from the template.
    """
    for i, v in enumerate(nics):
        if v.mac:
            raise InvalidArgument(f"nics[{i}].mac", "a template carries no MACs: each VM made from it gets fresh "
                                                    "MACs from its cluster's pool (leave mac= out)")


class TemplateService:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def create(self, *, name: str, from_vm: str = "", datacenter: str = "", memory_mib: int = 0, vcpus: int = 0,
               nics: Sequence[Vnic] = (), boot: BootSource | None = None,
               domain_type: DomainType | None = None) -> TemplateView:
        """From a VM (its vNICs, without MACs, with the PCI addresses of its first boot and the names its
        guest last gave them; its boot source and domain type unless given) or directly."""
        rules.vm_name(name, "name", "template")
        boot = check_boot(boot)
        rules.vm_resources(memory_mib, vcpus, len(nics))
        if from_vm and nics:
            raise InvalidArgument("nics", "a template made from a VM takes the VM's vNICs")
        with self._pool.connection() as conn, conn.transaction():
            if from_vm:
                vm = vm_store.get_vm(conn, from_vm)
                vnics = [replace(v, mac=None, host_device=None) for v in vnic_store.vm_vnics(conn, vm.id)
                         if not v.unplugging]
                dc, memory_mib, vcpus = vm.datacenter, memory_mib or vm.memory_mib, vcpus or vm.vcpus
                boot, domain_type = boot or vm.boot, domain_type or vm.domain_type
            else:
                dc = datacenter or DEFAULT_DATACENTER
                checked = check_vnics(nics)
                refuse_macs(checked)
                vnics = [replace(v, position=i) for i, v in enumerate(checked)]
                networks = vnic_store.network_refs(conn, dc, lock=True)
                profiles = profile_store.profile_refs(conn, dc)
                vnics = [with_profile(v, profiles, f"nics[{i}]") for i, v in enumerate(vnics)]
                for i, v in enumerate(vnics):
                    attached_network_id(v, networks, f"nics[{i}].network")
            t = store.insert_template(conn, name=name, datacenter=dc, memory_mib=memory_mib or DEFAULT_MEMORY_MIB,
                                      vcpus=vcpus or 1, source_vm=from_vm or None, nics=vnics,
                                      boot=boot or DISKLESS, domain_type=domain_type or DomainType.AUTO,
                                      guest_names_of_vm=vm.id if from_vm else None)
            return self._view(conn, t)

    def list(self) -> list[TemplateView]:
        with self._pool.connection() as conn:
            return [self._view(conn, t) for t in store.list_templates(conn)]

    def get(self, name: str) -> TemplateView:
        with self._pool.connection() as conn:
            return self._view(conn, store.get_template(conn, name))

    def delete(self, name: str) -> None:
        with self._pool.connection() as conn:
            store.delete_template(conn, name)

    @staticmethod
    def _view(conn, t: TemplateRecord) -> TemplateView:
        return TemplateView(t, source_guest_order(vnic_store.source_vnics(conn, SourceKind.TEMPLATE, t.id)),
                            guest_store.source_guest_names(conn, SourceKind.TEMPLATE, t.id))
