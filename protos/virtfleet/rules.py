"""The naming and value rules both ends enforce, one function each.

The manager refuses at its door exactly what an agent would refuse, because both
call these functions; a rule written twice drifts, and drift is how VDSM earned
"network out of sync". Each check raises `InvalidArgument` naming the request field
and returns the canonical value (a default filled in, an address normalised).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import InvalidArgument, shown

IFNAMSIZ = 16  # the kernel's buffer for a link name, NUL included
MIN_MTU, MAX_MTU, DEFAULT_MTU = 68, 65535, 1500
MIN_VLAN, MAX_VLAN = 1, 4094
IPV4_METHODS = ("none", "static", "dhcp")

_VM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_VNIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")   # becomes libvirt's user alias ua-NAME
# The vNIC models QEMU emulates that libvirt accepts for <model type=…>.
VNIC_MODELS = frozenset({"virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3"})
VM_NAME_RULE = "1-63 letters, digits, '_', '.', '-', starting with a letter or digit"
VNIC_NAME_RULE = "1-32 letters, digits, '_', '-', starting with a letter or digit"


def device_name(name: str, field: str, what: str = "device") -> str:
    """The kernel's own rule for link names (dev_valid_name): bridges, NICs, bonds, VLAN devices, taps."""
    if not name:
        raise InvalidArgument(field, f"a {what} name is required")
    if len(name.encode()) >= IFNAMSIZ:
        raise InvalidArgument(field, f"{what} name {shown(name)} is longer than {IFNAMSIZ - 1} bytes "
                                     "(the kernel's limit for device names)")
    if name in (".", ".."):
        raise InvalidArgument(field, f"{shown(name)} is not a valid {what} name")
    if any(c in "/:" or c.isspace() for c in name):
        raise InvalidArgument(field, f"{what} name {shown(name)} contains '/', ':' or whitespace")
    return name


def vlan_id(vlan: int, field: str = "vlan") -> int | None:
    """0 means untagged (None); otherwise 1-4094 (0 and 4095 are reserved by 802.1Q)."""
    if vlan == 0:
        return None
    if not MIN_VLAN <= vlan <= MAX_VLAN:
        raise InvalidArgument(field, f"VLAN id {vlan} is outside {MIN_VLAN}-{MAX_VLAN}")
    return vlan


def mtu(value: int, field: str = "mtu") -> int:
    """0 means the default (1500); otherwise what the kernel accepts for an Ethernet device."""
    if value == 0:
        return DEFAULT_MTU
    if not MIN_MTU <= value <= MAX_MTU:
        raise InvalidArgument(field, f"MTU {value} is outside {MIN_MTU}-{MAX_MTU}")
    return value


def vm_name(name: str, field: str = "name", what: str = "VM") -> str:
    """Also templates' and snapshots' names (`what`): one database domain holds all three."""
    if not _VM_NAME.fullmatch(name or ""):
        raise InvalidArgument(field, f"{what} name {shown(name)}: {VM_NAME_RULE}")
    return name


def vnic_name(name: str, field: str = "name") -> str:
    if not _VNIC_NAME.fullmatch(name or ""):
        raise InvalidArgument(field, f"vNIC name {shown(name)}: {VNIC_NAME_RULE}")
    return name


def vnic_model(model: str, field: str = "model") -> str:
    if model not in VNIC_MODELS:
        raise InvalidArgument(field, f"model {shown(model)} is not one of {', '.join(sorted(VNIC_MODELS))}")
    return model


def ipv4_method(method: str, field: str = "method") -> str:
    method = method or "none"
    if method not in IPV4_METHODS:
        raise InvalidArgument(field, f"{shown(method)} is not one of {', '.join(IPV4_METHODS)}")
    return method


def ipv4_interface(address: str, prefixlen: int, field: str) -> ipaddress.IPv4Interface:
    """A static host address: `field` names the address; `.prefixlen` is checked beside it."""
    if not 1 <= prefixlen <= 32:
        raise InvalidArgument(f"{field}.prefixlen", f"prefix length {prefixlen} is outside 1-32")
    try:
        return ipaddress.IPv4Interface(f"{address}/{prefixlen}")
    except ValueError:
        raise InvalidArgument(f"{field}.address",
                              f"{shown(f'{address}/{prefixlen}')} is not an IPv4 address with a prefix") from None


def ipv4_gateway(gateway: str, network: ipaddress.IPv4Network, field: str) -> str:
    try:
        gw = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise InvalidArgument(field, f"{shown(gateway)} is not an IPv4 address") from None
    if gw not in network:
        raise InvalidArgument(field, f"{gw} is not inside {network}")
    return str(gw)


ANY_IPV4 = ipaddress.IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Ipv4Values:
    """A network's IPv4 settings, canonical: method filled in, addresses normalised."""

    method: str
    address: str = ""
    prefixlen: int = 0
    gateway: str = ""


def ipv4_config(method: str, address: str, prefixlen: int, gateway: str, field: str) -> Ipv4Values:
    """One network's IPv4 settings (`field` is the Ipv4Config's path): an address only with `static`,
    a gateway inside the static address's subnet (any unicast address with DHCP or none)."""
    method = ipv4_method(method, f"{field}.method")
    network = ANY_IPV4
    if method == "static":
        iface = ipv4_interface(address, prefixlen, field)
        network, address = iface.network, str(iface.ip)
    elif address or prefixlen:
        raise InvalidArgument(f"{field}.address", f"an address needs method static, not {method}")
    gw = ipv4_gateway(gateway, network, f"{field}.gateway") if gateway else ""
    return Ipv4Values(method, address if method == "static" else "", prefixlen if method == "static" else 0, gw)


def default_route(wanted: bool, ipv4: Ipv4Values, field: str) -> bool:
    """The host's default route goes through the network's gateway, so it needs one."""
    if wanted and not ipv4.gateway:
        raise InvalidArgument(field, "a default route needs ipv4.gateway")
    return wanted


# -- limits -------------------------------------------------------------------------------------
# Every number and list a request carries has a ceiling, checked at both ends by the functions
# below, so no value reaches libvirt, the kernel or a PostgreSQL `integer` column that would make
# it allocate without bound, hang or fail with an internal error. A host's own capabilities
# (libvirt's max vCPUs, its memory) narrow the vCPU and memory limits further on the agent.

PG_INT_MAX = 2**31 - 1          # a PostgreSQL `integer` column
MAX_VCPUS = 4096                # QEMU's ceiling for any machine type; a host's own is usually lower
MAX_MEMORY_MIB = 16 * 1024**2   # 16 TiB: the largest x86 host libvirt runs today
MAX_TIMEOUT_S = 3600            # any wait a call may ask for (stop, connectivity check)
MAX_DESCRIPTION = 1024          # characters: a note, not a document (1 MiB ones broke `network list`)
MAX_VNICS_PER_VM = 64           # PCI slots a VM's buses can give vNICs
MAX_BOND_SLAVES = 64            # ports per bond a request may name
MAX_ITEMS_PER_REQUEST = 4096    # networks, attachments, bonds in one request (bench.hostnet sends 500)
MAX_RANGES_PER_POOL = 32        # MAC ranges (merged): at 2 MiB per whole-OUI range, 64 MiB per pool at most


def count_within(count: int, limit: int, field: str, what: str) -> int:
    """A list's length: `what` says what is counted ("vNICs per VM")."""
    if count > limit:
        raise InvalidArgument(field, f"{count} {what}; at most {limit}")
    return count


def int_within(value: int, low: int, high: int, field: str, what: str) -> int:
    if not low <= value <= high:
        raise InvalidArgument(field, f"{what} {shown(value)} is outside {low}-{high}")
    return value


def pg_integer(value: int, field: str) -> int:
    """Any integer stored in an `integer` column: a larger one is the caller's error, not INTERNAL."""
    return int_within(value, -PG_INT_MAX - 1, PG_INT_MAX, field, "value")


def vcpus(value: int, field: str = "vcpus", host_max: int = MAX_VCPUS) -> int:
    """1 to the smaller of MAX_VCPUS and the host's own ceiling (libvirt's getMaxVcpus)."""
    return int_within(value, 1, min(MAX_VCPUS, host_max or MAX_VCPUS), field, "vCPU count")


def memory_mib(value: int, field: str = "memory_mib", host_max: int = MAX_MEMORY_MIB) -> int:
    """1 MiB to the smaller of MAX_MEMORY_MIB and the host's memory."""
    return int_within(value, 1, min(MAX_MEMORY_MIB, host_max or MAX_MEMORY_MIB), field, "memory (MiB)")


def timeout_s(value: int, field: str = "timeout_s") -> int:
    """0 keeps its meaning (the default, or no wait); otherwise at most MAX_TIMEOUT_S."""
    return int_within(value, 0, MAX_TIMEOUT_S, field, "timeout (s)")


def vm_resources(memory: int, cpus: int, vnics: int, field: str = "") -> None:
    """A VM's sizes as a request gives them; 0 memory or vCPUs means "the default or the source's"."""
    prefix = f"{field}." if field else ""
    if memory:
        memory_mib(memory, f"{prefix}memory_mib")
    if cpus:
        vcpus(cpus, f"{prefix}vcpus")
    count_within(vnics, MAX_VNICS_PER_VM, f"{prefix}nics", "vNICs per VM")


def description(text: str, field: str = "description") -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(field, f"is {len(text)} characters long; at most {MAX_DESCRIPTION}")
    return text


DEFAULT_STOP_TIMEOUT_S = 60
MAX_STOP_TIMEOUT_S = 300   # with the manager's agent timeout on top, still inside a VM claim's 10 minutes


def stop_timeout(value: int, field: str = "timeout_s") -> int:
    """How long a guest gets to shut down before it is destroyed: 0 means the default (60 s).

    Bounded because the call that waits holds a worker thread on the agent and the
    manager, and the VM's claim, for that long.
    """
    if value == 0:
        return DEFAULT_STOP_TIMEOUT_S
    if not 0 < value <= MAX_STOP_TIMEOUT_S:
        raise InvalidArgument(field, f"a stop timeout of {value} s is outside 1-{MAX_STOP_TIMEOUT_S} s")
    return value
