"""A vNIC on the wire to an agent, and the agent's answers about it read back in the manager's terms.

This sits in the service layer, not in domain/: it speaks the agent's contract
(vm.proto), needs what only the service looks up (the logical network's VLAN), and
is used where the service calls agents. The virtualport and direct mode messages
are the same types in the manager's own contract (vms.proto), so the API builds
its `Nic` with these functions too: each conversion is written once.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.v1 import vm_pb2

from ..domain.vnic import DirectMode, PciAddress, Qbg, Qbh, Virtualport, Vnic, VnicKind, VnicRuntime
from ..domain.vnicprofile import ProfileSettings, QosLimit, VnicProfile
from ..store.vnics import NetworkRef

_KIND_MESSAGE = {VnicKind.BRIDGE: vm_pb2.VNIC_KIND_BRIDGE, VnicKind.VIRTUAL_NETWORK: vm_pb2.VNIC_KIND_VIRTUAL_NETWORK,
                 VnicKind.DIRECT: vm_pb2.VNIC_KIND_DIRECT}
MODE_MESSAGE = {DirectMode.VEPA: vm_pb2.DIRECT_MODE_VEPA, DirectMode.BRIDGE: vm_pb2.DIRECT_MODE_BRIDGE,
                DirectMode.PRIVATE: vm_pb2.DIRECT_MODE_PRIVATE, DirectMode.PASSTHROUGH: vm_pb2.DIRECT_MODE_PASSTHROUGH}
MODE_FROM_MESSAGE = {v: k for k, v in MODE_MESSAGE.items()}


def put_virtualport(msg: vm_pb2.VNic, port: Virtualport | None) -> None:
    """Sets the `qbg`/`qbh` oneof of an agent's VNic or a manager's Nic (vms.proto uses the same messages)."""
    if isinstance(port, Qbg):
        msg.qbg.CopyFrom(vm_pb2.Virtualport8021Qbg(managerid=port.managerid, typeid=port.typeid,
                                                   typeidversion=port.typeidversion, instanceid=port.instanceid))
    elif isinstance(port, Qbh):
        msg.qbh.CopyFrom(vm_pb2.Virtualport8021Qbh(profileid=port.profileid))


def virtualport_from(msg: vm_pb2.VNic) -> Virtualport | None:
    which = msg.WhichOneof("virtualport")
    if which == "qbg":
        return Qbg(msg.qbg.managerid, msg.qbg.typeid, msg.qbg.typeidversion, msg.qbg.instanceid)
    if which == "qbh":
        return Qbh(msg.qbh.profileid)
    return None


def pci_message(p: PciAddress) -> vm_pb2.PciAddress:
    return vm_pb2.PciAddress(domain=p.domain, bus=p.bus, slot=p.slot, function=p.function)


def agent_vnic(v: Vnic, vlan: int | None) -> vm_pb2.VNic:
    """The host's view: a BRIDGE vNIC is a tap on the bridge named after its logical network."""
    msg = vm_pb2.VNic(name=v.name, kind=_KIND_MESSAGE[v.kind], source=v.source or "", model=v.model,
                      mac=v.mac or "", vlan=vlan or 0)
    if v.direct_mode is not None:
        msg.mode = MODE_MESSAGE[v.direct_mode]
    if v.pci is not None:
        msg.pci.CopyFrom(pci_message(v.pci))
    put_virtualport(msg, v.virtualport)
    return msg


def agent_vnic_on(n: Vnic, networks: Mapping[str, NetworkRef], profile: VnicProfile | None = None) -> vm_pb2.VNic:
    """The agent's vNIC for `n`: its VLAN (and MTU) from the logical network, which must still be a VM network,
    its profile's settings where its kind takes them, and its link state."""
    vlan = None
    msg_mtu = 0
    if n.network:
        if n.network not in networks:
            raise FailedPrecondition(f"vNIC {n.name}: network {n.network!r} no longer exists")
        ref = networks[n.network]
        if n.kind is VnicKind.BRIDGE and not ref.vm_network:
            raise FailedPrecondition(f"vNIC {n.name}: network {n.network} is not a VM network (no bridge)")
        vlan = ref.vlan
        msg_mtu = ref.mtu
    msg = agent_vnic(n, vlan)
    msg.link_down = n.link_down
    if profile is not None:
        put_profile(msg, n.kind, profile.settings, msg_mtu)
    return msg


def put_profile(msg: vm_pb2.VNic, kind: VnicKind, s: ProfileSettings, network_mtu: int) -> None:
    """A profile's settings on an agent's VNic, those the vNIC's kind can take.

    A tap on a bridge takes them all. A direct (macvtap) vNIC takes only the QoS: libvirt's
    nwfilter, port isolation and the bridge's mirroring need a tap on a bridge, so the
    anti-spoofing of a network's default profile does not make a direct vNIC fail to start.
    """
    bandwidth = bandwidth_message(s)
    if bandwidth is not None:
        msg.bandwidth.CopyFrom(bandwidth)
    if kind is not VnicKind.BRIDGE:
        return
    flt = filter_message(s)
    if flt is not None:
        msg.filter.CopyFrom(flt)
    msg.port_mirroring, msg.isolated = s.port_mirroring, s.isolated
    msg.mtu = network_mtu if s.mtu_to_guest else 0


def limit_message(q: QosLimit | None) -> vm_pb2.BandwidthLimit | None:
    return vm_pb2.BandwidthLimit(average=q.average, peak=q.peak or 0, burst=q.burst or 0) if q else None


def bandwidth_message(s: ProfileSettings) -> vm_pb2.Bandwidth | None:
    """libvirt's <bandwidth>, the same message in the agent's contract and the profiles' (vm.proto's Bandwidth)."""
    if s.inbound is None and s.outbound is None:
        return None
    return vm_pb2.Bandwidth(inbound=limit_message(s.inbound), outbound=limit_message(s.outbound))


def filter_message(s: ProfileSettings) -> vm_pb2.NetworkFilter | None:
    if not s.filter_name:
        return None
    return vm_pb2.NetworkFilter(name=s.filter_name, parameters=[vm_pb2.FilterParameter(name=p.name, value=p.value)
                                                                 for p in s.filter_parameters])


def runtime(status: vm_pb2.VmStatus) -> list[VnicRuntime]:
    """Our vNICs (those with a name) as the host read them back."""
    return [VnicRuntime(r.name, PciAddress(r.pci.domain, r.pci.bus, r.pci.slot, r.pci.function)
                        if r.HasField("pci") else None, r.host_device or None)
            for r in status.nics if r.name]


# -- the agent's field paths in the admin's words ------------------------------------------------

# The agent's VNic field → the manager's Nic field (its first component; the rest is kept).
_FIELDS = {"qbg": "virtualport", "qbh": "virtualport", "vlan": "network", "kind": ""}
_SOURCE = {VnicKind.BRIDGE: "network", VnicKind.VIRTUAL_NETWORK: "virtual_network", VnicKind.DIRECT: "direct_nic"}
_SPEC_NIC = re.compile(r"spec\.nics\[(\d+)\](?:\.(.*))?")


def _nic_field(agent_field: str, v: Vnic) -> str:
    head, _, rest = agent_field.partition(".")
    if head == "pci":
        return "pci_address"          # one text field here: `pci.slot` is a part of it
    name = _SOURCE[v.kind] if head == "source" else _FIELDS.get(head, head)
    return ".".join(p for p in (name, rest) if p)


def spec_violation(err: InvalidArgument, vnics: Sequence[Vnic]) -> InvalidArgument:
    """An agent's refusal of a VmSpec built from `vnics` as the admin's request names it.

    `spec.nics[2].qbg.managerid` → `nics[2].virtualport.managerid`; `spec.memory_mib` → `memory_mib`.
    The spec lists the vNICs in domain XML order, which is the order the admin gave them.
    """
    m = _SPEC_NIC.fullmatch(err.field)
    if m and int(m.group(1)) < len(vnics):
        index = int(m.group(1))
        return InvalidArgument(_nic_field(m.group(2) or "", vnics[index]), err.description).under(f"nics[{index}]")
    return InvalidArgument(err.field.removeprefix("spec."), err.description)


def attach_violation(err: InvalidArgument, v: Vnic) -> InvalidArgument:
    """An agent's refusal of a hot-plugged VNic: `nic.qbh.profileid` → `nic.virtualport.profileid`."""
    if err.field == "nic" or err.field.startswith("nic."):
        return InvalidArgument(_nic_field(err.field.removeprefix("nic").lstrip("."), v), err.description).under("nic")
    return err
