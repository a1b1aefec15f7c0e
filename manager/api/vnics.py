"""The contract's `Nic` ⇄ `Vnic`: the typed values are parsed here, at the door, naming the request field."""
from __future__ import annotations

from virtfleet import macaddr
from virtfleet.v1 import vms_pb2

from ..domain.vnic import DEFAULT_MODEL, Vnic, VnicKind, attachment_kind, pci_field
from ..service.vnic_messages import MODE_FROM_MESSAGE, MODE_MESSAGE, put_virtualport, virtualport_from


def vnic_from_message(m: vms_pb2.Nic, field: str) -> Vnic:
    """What an admin asked for, typed; the service checks names and what goes with which kind.

    A profile alone attaches to the profile's network (the service fills it in).
    """
    alone = m.profile and not (m.network or m.virtual_network or m.direct_nic)
    return Vnic(
        name=m.name,
        kind=VnicKind.BRIDGE if alone else attachment_kind(m.network or None, m.virtual_network or None,
                                                           m.direct_nic or None, field),
        network=m.network or None, virtual_network=m.virtual_network or None, direct_nic=m.direct_nic or None,
        direct_mode=MODE_FROM_MESSAGE.get(m.mode), virtualport=virtualport_from(m), model=m.model or DEFAULT_MODEL,
        mac=macaddr.unicast_field(m.mac, f"{field}.mac") if m.mac else None,
        pci=pci_field(m.pci_address, f"{field}.pci_address") if m.pci_address else None,
        profile=m.profile or None, link_down=m.link_down)


def vnics_from_messages(ms, field: str = "nics") -> list[Vnic]:
    return [vnic_from_message(m, f"{field}[{i}]") for i, m in enumerate(ms)]


def vnic_message(v: Vnic) -> vms_pb2.Nic:
    m = vms_pb2.Nic(name=v.name, network=v.network or "", virtual_network=v.virtual_network or "",
                    direct_nic=v.direct_nic or "", mode=MODE_MESSAGE[v.direct_mode] if v.direct_mode else 0,
                    model=v.model, mac=v.mac or "", pci_address=str(v.pci) if v.pci else "",
                    host_device=v.host_device or "", position=v.position, unplugging=v.unplugging,
                    profile=v.profile or "", link_down=v.link_down, profile_out_of_sync=v.profile_out_of_sync)
    put_virtualport(m, v.virtualport)
    return m
