"""Checks of a VM spec before libvirt sees it, each naming the vNIC and field it concerns.

Pure functions: the host facts they need (which VM holds which device in
passthrough, which VSI instance ids are taken) are passed in, so the rules are
tested without a hypervisor. libvirt's own schema is the last line, not the first:
its errors name neither the vNIC nor the field.
"""
from __future__ import annotations

import ipaddress
import uuid as uuidlib
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from virtfleet import macaddr, nicprofile, rules
from virtfleet.errors import FailedPrecondition, InvalidArgument, shown

from ..guest.cmdline import BASE_CMDLINE
from .connection import DOMAIN_TYPES, HostLimits
from .spec import (BootSource, DirectMode, FilterRef, NetworkMode, NicKind, PciAddress, Qbg, Qbh, VirtualNetworkSpec,
                   VmSpec,
                   VNicRuntime, VNicSpec)

MAX_CMDLINE = 2047   # x86's COMMAND_LINE_SIZE is 2048 bytes with the NUL; a longer line is cut silently
MAX_PROFILEID = 39  # libvirt keeps it in a 40-byte buffer


def _uuid_ok(text: str) -> bool:
    try:
        uuidlib.UUID(text)
    except ValueError:
        return False
    return True


# --- one vNIC --------------------------------------------------------------------------------

def validate_nic(nic: VNicSpec, where: str) -> None:
    """`where` is the field path of this vNIC in the request, e.g. spec.nics[2]; refusals name the vNIC too."""
    try:
        _check_nic(nic, where)
    except InvalidArgument as err:
        label = f"vNIC {nic.name!r}" if nic.name else "vNIC"
        raise InvalidArgument(err.field, f"{label}: {err.description}") from None


def _check_nic(nic: VNicSpec, where: str) -> None:
    def bad(field: str, message: str) -> InvalidArgument:
        return InvalidArgument(f"{where}.{field}", message)

    rules.vnic_name(nic.name, f"{where}.name")
    if nic.kind is None:
        raise bad("kind", "kind is required: bridge, direct or virtual_network")
    if not nic.source:
        raise bad("source", f"a {nic.kind} vNIC needs a source ({_source_meaning(nic.kind)})")
    if nic.kind in (NicKind.BRIDGE, NicKind.DIRECT):
        rules.device_name(nic.source, f"{where}.source", "host bridge" if nic.kind == NicKind.BRIDGE else "host NIC")
    if nic.mode is not None and nic.kind != NicKind.DIRECT:
        raise bad("mode", f"mode {nic.mode} applies only to direct (macvtap) vNICs, not {nic.kind}")
    rules.vnic_model(nic.model, f"{where}.model")
    if nic.mac:
        macaddr.unicast_field(nic.mac, f"{where}.mac")
    rules.vlan_id(nic.vlan, f"{where}.vlan")
    if nic.pci is not None:
        _validate_pci(nic.pci, bad)
    if nic.virtualport is not None:
        _validate_virtualport(nic, bad)
    _validate_profile(nic, where, bad)


def _validate_profile(nic: VNicSpec, where: str, bad: Callable[[str, str], InvalidArgument]) -> None:
    """A profile's settings, each where libvirt and the kernel can honour it.

    nwfilter, isolation and mirroring act on a tap in a Linux bridge: a macvtap bypasses the
    host's bridge and its ebtables, so there they would be promises nobody keeps. A
    passed-through device is the guest's own: libvirt cannot set its link state.
    """
    if nic.bandwidth is not None:
        for direction in ("inbound", "outbound"):
            limit = getattr(nic.bandwidth, direction)
            if limit is not None:
                nicprofile.bandwidth_limit(limit.average, limit.peak, limit.burst, f"{where}.bandwidth.{direction}")
    if nic.filter is not None:
        if nic.kind == NicKind.DIRECT:
            raise bad("filter.name", "a network filter acts on a tap in a host bridge; a direct (macvtap) vNIC "
                                     "bypasses the host's filters")
        nicprofile.filter_name(nic.filter.name, f"{where}.filter.name")
        rules.count_within(len(nic.filter.parameters), nicprofile.MAX_FILTER_PARAMETERS, f"{where}.filter.parameters",
                           "filter parameters")
        for i, (name, value) in enumerate(nic.filter.parameters):
            nicprofile.filter_parameter(name, value, f"{where}.filter.parameters[{i}]")
    for flag, what in (("port_mirroring", "port mirroring"), ("isolated", "port isolation")):
        if getattr(nic, flag) and nic.kind != NicKind.BRIDGE:
            raise bad(flag, f"{what} is a property of a host bridge's port: bridge vNICs only, not {nic.kind}")
    if nic.mtu:
        rules.mtu(nic.mtu, f"{where}.mtu")
        if nic.kind == NicKind.DIRECT:
            raise bad("mtu", "a direct (macvtap) vNIC has its host NIC's MTU; <mtu> is for bridge and "
                             "virtual_network vNICs")
        if nic.model != "virtio":
            raise bad("mtu", f"the MTU reaches the guest only through virtio (host_mtu), not model {nic.model}")
    if nic.link_down and nic.kind == NicKind.DIRECT and nic.mode == DirectMode.PASSTHROUGH:
        raise bad("link_down", "libvirt cannot set the link state of a passed-through host device")


def check_filters_exist(nics: Iterable[tuple[str, VNicSpec]], known: Iterable[str]) -> None:
    """Each vNIC's filter is one this host's libvirt has (conn.listNWFilters()); `nics` pairs each with its
    field path. Refused before libvirt, whose own error names neither the vNIC nor the field."""
    have = set(known)
    for where, nic in nics:
        if nic.filter is not None and nic.filter.name not in have:
            shown_names = ", ".join(sorted(have)[:12]) or "none: is the nwfilter driver running?"
            raise InvalidArgument(f"{where}.filter.name", f"vNIC {nic.name!r}: this host's libvirt has no network "
                                  f"filter {nic.filter.name!r} (it has {shown_names})")


def _source_meaning(kind: NicKind) -> str:
    return {NicKind.BRIDGE: "the host bridge", NicKind.DIRECT: "the host NIC",
            NicKind.VIRTUAL_NETWORK: "the virtual network's name"}[kind]


def _validate_pci(pci: PciAddress, bad: Callable[[str, str], InvalidArgument]) -> None:
    limits = (("domain", pci.domain, 0xFFFF), ("bus", pci.bus, 0xFF), ("slot", pci.slot, 0x1F),
              ("function", pci.function, 0x7))
    for name, value, top in limits:
        if value > top:
            raise bad(f"pci.{name}", f"PCI {name} {value:#x} is above {top:#x}")
    if pci.bus == 0 and pci.slot == 0:
        raise bad("pci.slot", "PCI slot 0 of bus 0 is the host bridge's")


def _validate_virtualport(nic: VNicSpec, bad: Callable[[str, str], InvalidArgument]) -> None:
    port = nic.virtualport
    kind = "802.1Qbg" if isinstance(port, Qbg) else "802.1Qbh"
    if nic.kind != NicKind.DIRECT:
        raise bad("qbg" if isinstance(port, Qbg) else "qbh",
                  f"an {kind} virtualport needs a direct (macvtap) vNIC, not {nic.kind}")
    if isinstance(port, Qbg):
        if not 1 <= port.managerid <= 255:
            raise bad("qbg.managerid", f"802.1Qbg managerid must be 1-255 (0 is reserved), got {port.managerid}")
        if port.typeid >= 1 << 24:
            raise bad("qbg.typeid", f"802.1Qbg typeid must fit 24 bits (at most {(1 << 24) - 1}), got {port.typeid}")
        if port.typeidversion >= 1 << 8:
            raise bad("qbg.typeidversion",
                      f"802.1Qbg typeidversion must fit 8 bits (at most 255), got {port.typeidversion}")
        if port.instanceid and not _uuid_ok(port.instanceid):
            raise bad("qbg.instanceid", f"802.1Qbg instanceid must be a UUID, got {port.instanceid!r}")
        if nic.vlan == 0:
            raise bad("vlan", "802.1Qbg requires the network's VLAN id to be non-zero")
    elif isinstance(port, Qbh):
        if not port.profileid:
            raise bad("qbh.profileid", "802.1Qbh requires a non-empty profileid")
        if len(port.profileid) > MAX_PROFILEID or not port.profileid.isprintable():
            raise bad("qbh.profileid", f"802.1Qbh profileid must be at most {MAX_PROFILEID} printable characters")


# --- a whole VM ------------------------------------------------------------------------------

def validate_vm(spec: VmSpec, limits: HostLimits = HostLimits()) -> None:
    """`limits` are the host's own (Hypervisor.limits): a VM larger than the host is refused before libvirt."""
    rules.vm_name(spec.name, "spec.name")
    if spec.uuid and not _uuid_ok(spec.uuid):
        raise InvalidArgument("spec.uuid", f"{shown(spec.uuid)} is not a UUID")
    rules.memory_mib(spec.memory_mib, "spec.memory_mib", limits.memory_mib)
    rules.vcpus(spec.vcpus, "spec.vcpus", limits.max_vcpus)
    rules.count_within(len(spec.nics), rules.MAX_VNICS_PER_VM, "spec.nics", "vNICs per VM")
    if spec.domain_type and spec.domain_type not in DOMAIN_TYPES:
        raise InvalidArgument("spec.domain_type", f"domain type {spec.domain_type!r} is not one of "
                              f"{', '.join(sorted(DOMAIN_TYPES))}")
    validate_boot(spec.boot, "spec.boot")
    for i, nic in enumerate(spec.nics):
        validate_nic(nic, f"spec.nics[{i}]")
    check_nics_distinct(spec.nics, "spec.nics")


def validate_boot(boot: BootSource, where: str) -> None:
    """The fields of one boot source that go together; files are checked where they are read (boot.resolve_boot)."""
    given = [name for name, on in (("kernel", bool(boot.kernel)), ("disk", bool(boot.disk)),
                                   ("test_guest", boot.test_guest)) if on]
    if len(given) > 1:
        raise InvalidArgument(f"{where}.{given[1]}", f"a VM boots from one source, but {' and '.join(given)} were "
                              "given")
    if boot.initrd and not boot.kernel:
        raise InvalidArgument(f"{where}.initrd", "an initrd needs a kernel (boot.kernel)")
    if boot.cmdline and not (boot.kernel or boot.test_guest):
        raise InvalidArgument(f"{where}.cmdline", "a kernel command line needs boot.kernel or boot.test_guest "
                              "(a disk's boot loader has its own)")
    for name in ("kernel", "initrd", "disk"):
        path = getattr(boot, name)
        if path and (not path.startswith("/") or "\0" in path or not path.isprintable()):
            raise InvalidArgument(f"{where}.{name}", f"{shown(path)} is not an absolute path on the host")
    if boot.cmdline:
        if "\0" in boot.cmdline or not boot.cmdline.isprintable():
            raise InvalidArgument(f"{where}.cmdline", "the kernel command line must be printable text (no NUL, "
                                  "no control characters)")
        whole = f"{BASE_CMDLINE} {boot.cmdline}" if boot.test_guest else boot.cmdline
        extra = " with the test guest's own" if boot.test_guest else ""
        if len(whole.encode()) > MAX_CMDLINE:
            raise InvalidArgument(f"{where}.cmdline", f"the kernel command line is {len(whole.encode())} bytes"
                                  f"{extra}; "
                                  f"the kernel keeps at most {MAX_CMDLINE}")


def check_nics_distinct(nics: Iterable[VNicSpec], where: str) -> None:
    """Names, MACs, PCI addresses, VSI instance ids and passed-through devices are each one vNIC's own."""
    seen: dict[tuple[str, object], str] = {}
    direct_on: dict[str, VNicSpec] = {}
    for i, nic in enumerate(nics):
        if nic.kind == NicKind.DIRECT:
            other = direct_on.setdefault(nic.source, nic)
            if other is not nic and DirectMode.PASSTHROUGH in (nic.mode, other.mode):
                raise InvalidArgument(f"{where}[{i}].source", f"vNIC {nic.name!r}: host device {nic.source} is "
                                      f"passed through by vNIC {other.name!r}; it serves one vNIC at a time")
        keys = [("name", nic.name), ("mac", macaddr.canonical(nic.mac) if nic.mac else None), ("pci", nic.pci)]
        if isinstance(nic.virtualport, Qbg):
            keys.append(("qbg.instanceid", nic.virtualport.instanceid.lower() or None))
        for field, value in keys:
            if value is None:
                continue
            if (field, value) in seen:
                raise InvalidArgument(f"{where}[{i}].{field}",
                                      f"vNIC {nic.name!r}: {field} {value} is already vNIC {seen[field, value]!r}'s")
            seen[field, value] = nic.name


def complete_vm(spec: VmSpec, new_uuid: Callable[[], str] = lambda: str(uuidlib.uuid4())) -> VmSpec:
    """Each vNIC as libvirt gets it (see complete_nic)."""
    return replace(spec, nics=tuple(complete_nic(n, new_uuid) for n in spec.nics))


def complete_nic(nic: VNicSpec, new_uuid: Callable[[], str] = lambda: str(uuidlib.uuid4())) -> VNicSpec:
    """A validated vNIC made canonical: its MAC as libvirt prints it, its filter parameters' addresses
    canonical, and a fresh VSI instance id for an 802.1Qbg vNIC that has none (a VSI instance is created now)."""
    if nic.mac:
        nic = replace(nic, mac=macaddr.canonical(nic.mac))
    if nic.filter is not None:
        params = tuple(nicprofile.filter_parameter(n, v, "filter") for n, v in nic.filter.parameters)
        nic = replace(nic, filter=FilterRef(nic.filter.name, params))
    port = nic.virtualport
    if isinstance(port, Qbg):
        return replace(nic, virtualport=replace(port, instanceid=port.instanceid.lower() or new_uuid()))
    return nic


# --- rules that need the host's other VMs ----------------------------------------------------

@dataclass(frozen=True)
class HostNicUse:
    """A direct vNIC of some VM on this host: the facts the exclusivity rules need."""

    vm: str
    device: str
    mode: DirectMode
    vsi_instanceid: str = ""


def check_host_conflicts(vm: str, nics: Iterable[tuple[str, VNicSpec]], others: Iterable[HostNicUse]) -> None:
    """Passthrough gives a host device to one guest at a time; a VSI instance id is one vNIC's.

    `nics` pairs each vNIC with its field path; `others` are the direct vNICs of the
    host's other VMs (the VM being (re)defined is excluded by the caller).
    """
    by_device: dict[str, list[HostNicUse]] = {}
    instance_holder: dict[str, str] = {}
    for use in others:
        if use.vm == vm:
            continue
        by_device.setdefault(use.device, []).append(use)
        if use.vsi_instanceid:
            instance_holder[use.vsi_instanceid.lower()] = use.vm
    for where, nic in nics:
        if nic.kind != NicKind.DIRECT:
            continue
        for use in by_device.get(nic.source, []):
            if use.mode == DirectMode.PASSTHROUGH:
                raise FailedPrecondition(f"{where}: vNIC {nic.name!r}: host device {nic.source} is passed "
                                         f"through to VM {use.vm!r}; it serves one guest at a time")
            if nic.mode == DirectMode.PASSTHROUGH:
                raise FailedPrecondition(f"{where}: vNIC {nic.name!r}: cannot pass host device {nic.source} "
                                         f"through: VM {use.vm!r} uses it ({use.mode})")
        if isinstance(nic.virtualport, Qbg) and nic.virtualport.instanceid.lower() in instance_holder:
            holder = instance_holder[nic.virtualport.instanceid.lower()]
            raise FailedPrecondition(f"{where}: vNIC {nic.name!r}: 802.1Qbg instanceid "
                                     f"{nic.virtualport.instanceid} is already VM {holder!r}'s VSI instance")


def missing_host_device(nics: Iterable[tuple[str, VNicRuntime]], devices: set[str], bridges: set[str]) -> str | None:
    """Why a start or hot-plug could not attach a vNIC, naming it: its bridge or host NIC is not on this host.

    `nics` pairs each vNIC with its field path (e.g. nics[2], or nic for a hot-plug).
    """
    for where, nic in nics:
        label = f"{where}.source: vNIC {nic.name or nic.alias!r}"
        if nic.kind == NicKind.BRIDGE and nic.source not in bridges:
            what = "is not a bridge" if nic.source in devices else "does not exist on this host"
            return f"{label}: host bridge {nic.source!r} {what}"
        if nic.kind == NicKind.DIRECT and nic.source not in devices:
            return f"{label}: host NIC {nic.source!r} does not exist on this host"
    return None


# --- virtual networks ------------------------------------------------------------------------

def validate_network(net: VirtualNetworkSpec) -> None:
    f = "network"
    try:
        rules.vm_name(net.name, f"{f}.name")  # libvirt names networks as it names domains
    except InvalidArgument:
        raise InvalidArgument(f"{f}.name", f"network name {net.name!r}: {rules.VM_NAME_RULE}") from None
    if net.mode is None:
        raise InvalidArgument(f"{f}.mode", "mode is required: nat, routed, bridged, isolated or open")
    if net.uuid and not _uuid_ok(net.uuid):
        raise InvalidArgument(f"{f}.uuid", f"{net.uuid!r} is not a UUID")
    if net.bridge:
        rules.device_name(net.bridge, f"{f}.bridge", "bridge")
    if net.forward_dev:
        if net.mode not in (NetworkMode.NAT, NetworkMode.ROUTED):
            raise InvalidArgument(f"{f}.forward_dev", "forward_dev is an interface name, for nat and routed networks only")
        rules.device_name(net.forward_dev, f"{f}.forward_dev", "forward device")
    if net.mode == NetworkMode.BRIDGED:
        if not net.bridge:
            raise InvalidArgument(f"{f}.bridge", "a bridged network needs the existing host bridge's name")
        for name, value in (("address", net.address), ("prefixlen", net.prefixlen), ("dhcp_start", net.dhcp_start),
                            ("dhcp_end", net.dhcp_end)):
            if value:
                raise InvalidArgument(f"{f}.{name}", "a bridged network has no address or DHCP of libvirt's: the "
                                      "host bridge's network provides them")
        return
    _validate_network_addresses(net)


def _validate_network_addresses(net: VirtualNetworkSpec) -> None:
    f = "network"
    if not net.address:
        if net.mode != NetworkMode.ISOLATED:
            raise InvalidArgument(f"{f}.address", f"a {net.mode.name.lower()} network needs the host's address")
        if net.dhcp_start or net.dhcp_end:
            raise InvalidArgument(f"{f}.dhcp_start", "DHCP needs the network's address")
        return
    try:
        host = ipaddress.IPv4Address(net.address)
    except ValueError:
        raise InvalidArgument(f"{f}.address", f"{net.address!r} is not an IPv4 address") from None
    if not 8 <= net.prefixlen <= 30:
        raise InvalidArgument(f"{f}.prefixlen", f"prefix length must be 8-30, got {net.prefixlen}")
    subnet = ipaddress.IPv4Network(f"{host}/{net.prefixlen}", strict=False)
    if host in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"{f}.address", f"{host} is the network or broadcast address of {subnet}")
    if bool(net.dhcp_start) != bool(net.dhcp_end):
        raise InvalidArgument(f"{f}.dhcp_end" if net.dhcp_start else f"{f}.dhcp_start",
                              "a DHCP range needs both its start and its end")
    if not net.dhcp_start:
        return
    ends = []
    for name, text in (("dhcp_start", net.dhcp_start), ("dhcp_end", net.dhcp_end)):
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            raise InvalidArgument(f"{f}.{name}", f"{text!r} is not an IPv4 address") from None
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"{f}.{name}", f"{addr} is not a host address of {subnet}")
        ends.append(addr)
    if ends[0] > ends[1]:
        raise InvalidArgument(f"{f}.dhcp_end", f"DHCP range ends ({ends[1]}) before it starts ({ends[0]})")
    if ends[0] <= host <= ends[1]:
        raise InvalidArgument(f"{f}.dhcp_start", f"the DHCP range contains the host's own address {host}")
