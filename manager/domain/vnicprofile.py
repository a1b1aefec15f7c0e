"""A vNIC profile as the manager knows it, and the checks of what admins give (pure).

A profile is oVirt's: a logical network plus how its vNICs are treated. Values are
libvirt's units (average and peak in kbytes/s, burst in kbytes), so what the admin
types is what lands in the domain XML. The filters are those Debian's libvirt ships
(the agent checks against its own libvirt too, which may have more or fewer).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from virtfleet import macaddr, rules
from virtfleet.errors import InvalidArgument, shown

QOS_MAX = 2**31          # kbytes/s (kbytes for burst): oVirt's and the API's ceiling; libvirt's field is 32 bits

# The filters of Debian's `libvirt-daemon-config-nwfilter` (bookworm, libvirt 9.0: /usr/share/libvirt/nwfilter/).
LIBVIRT_FILTERS = frozenset({
    "allow-arp", "allow-dhcp", "allow-dhcp-server", "allow-dhcpv6", "allow-dhcpv6-server", "allow-incoming-ipv4",
    "allow-incoming-ipv6", "allow-ipv4", "allow-ipv6", "clean-traffic", "clean-traffic-gateway",
    "no-arp-ip-spoofing", "no-arp-mac-spoofing", "no-arp-spoofing", "no-ip-multicast", "no-ip-spoofing",
    "no-ipv6-multicast", "no-ipv6-spoofing", "no-mac-broadcast", "no-mac-spoofing", "no-other-l2-traffic",
    "no-other-rarp-traffic", "qemu-announce-self", "qemu-announce-self-rarp",
})
ANTI_SPOOFING_FILTER = "no-mac-spoofing"   # oVirt's vdsm-no-mac-spoofing is this filter plus no-arp-mac-spoofing

# The parameters those filters read (libvirt's "Formatting the network filter": variables), by what they hold.
_IPV4_PARAMETERS = frozenset({"IP", "DHCPSERVER"})
_IPV6_PARAMETERS = frozenset({"IPV6", "DHCPSERVERV6"})
_MAC_PARAMETERS = frozenset({"MAC", "GATEWAY_MAC"})
_LEARNING = ("CTRL_IP_LEARNING", frozenset({"any", "dhcp", "none"}))
FILTER_PARAMETERS = _IPV4_PARAMETERS | _IPV6_PARAMETERS | _MAC_PARAMETERS | {_LEARNING[0]}
MAX_FILTER_PARAMETERS = 64


@dataclass(frozen=True)
class QosLimit:
    """One direction: average (kbytes/s) is required; peak (kbytes/s) and burst (kbytes) are optional."""

    average: int
    peak: int | None = None
    burst: int | None = None


@dataclass(frozen=True)
class FilterParameter:
    name: str
    value: str


@dataclass(frozen=True)
class ProfileSettings:
    """What a profile does to its vNICs; the part an edit replaces."""

    inbound: QosLimit | None = None          # to the guest
    outbound: QosLimit | None = None         # from the guest
    filter_name: str | None = None
    filter_parameters: tuple[FilterParameter, ...] = ()
    port_mirroring: bool = False
    isolated: bool = False
    mtu_to_guest: bool = False


@dataclass(frozen=True)
class VnicProfile:
    name: str
    datacenter: str
    network: str
    settings: ProfileSettings = field(default_factory=ProfileSettings)
    is_default: bool = False
    generation: int = 1
    id: int = 0


def default_settings(vm_network: bool, anti_spoofing: bool) -> ProfileSettings:
    """A network's own profile: anti-spoofing on VM networks when the manager's `mac_anti_spoofing` is on.

    The database's trigger makes it (db/013_vnic_profiles.sql); this is the same rule for tests and for people.
    """
    return ProfileSettings(filter_name=ANTI_SPOOFING_FILTER if vm_network and anti_spoofing else None)


# -- what admins give ---------------------------------------------------------------------------


def profile_name(name: str, field: str = "name") -> str:
    """A profile an admin makes takes a VM-object name (a network's own profile has the network's name)."""
    return rules.vm_name(name, field, "vNIC profile")


def qos_value(value: int, field: str) -> int:
    if not 1 <= value <= QOS_MAX:
        raise InvalidArgument(field, f"{value} is out of range: 1 … {QOS_MAX} (kbytes/s; kbytes for burst)")
    return value


def qos_limit(average: int, peak: int, burst: int, field: str) -> QosLimit | None:
    """0 means "not given"; all 0: no limit in this direction. A peak or burst needs an average (libvirt's rule)."""
    if not (average or peak or burst):
        return None
    if not average:
        raise InvalidArgument(f"{field}.average", "a peak or burst needs an average (libvirt's rule)")
    return QosLimit(qos_value(average, f"{field}.average"), qos_value(peak, f"{field}.peak") if peak else None,
                    qos_value(burst, f"{field}.burst") if burst else None)


def filter_parameter(name: str, value: str, field: str) -> FilterParameter:
    """A parameter the default filters read, holding what it must: an address, a MAC, a learning mode."""
    if name not in FILTER_PARAMETERS:
        raise InvalidArgument(f"{field}.name", f"{shown(name)} is not a parameter of libvirt's filters; one of "
                                               f"{', '.join(sorted(FILTER_PARAMETERS))}")
    if name in _MAC_PARAMETERS:
        return FilterParameter(name, macaddr.unicast_field(value, f"{field}.value"))
    if name == _LEARNING[0]:
        if value not in _LEARNING[1]:
            raise InvalidArgument(f"{field}.value", f"{name} is one of {', '.join(sorted(_LEARNING[1]))}")
        return FilterParameter(name, value)
    version = 4 if name in _IPV4_PARAMETERS else 6
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise InvalidArgument(f"{field}.value", f"{shown(value)} is not an IPv{version} address ({name})")
    return FilterParameter(name, str(address))


def network_filter(name: str, parameters: list[tuple[str, str]], field: str = "filter") -> tuple[
        str | None, tuple[FilterParameter, ...]]:
    """Empty name: no filter (and no parameters); else one of LIBVIRT_FILTERS with valid parameters."""
    if not name:
        if parameters:
            raise InvalidArgument(f"{field}.parameters", "parameters need a filter")
        return None, ()
    if name not in LIBVIRT_FILTERS:
        raise InvalidArgument(f"{field}.name", f"{shown(name)} is not a filter libvirt ships; one of "
                                               f"{', '.join(sorted(LIBVIRT_FILTERS))}")
    rules.count_within(len(parameters), MAX_FILTER_PARAMETERS, f"{field}.parameters", "parameters")
    return name, tuple(filter_parameter(n, v, f"{field}.parameters[{i}]") for i, (n, v) in enumerate(parameters))
