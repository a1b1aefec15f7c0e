"""The value rules of a vNIC profile (QoS, network filter), one function each, for both ends.

The manager refuses a profile at its door with exactly the rules the agent applies
to the vNIC it becomes, because both call these; each raises `InvalidArgument`
naming the request field. Units are libvirt's and oVirt's: average and peak in
kbytes/s, burst in kbytes. Whether a filter *exists* is the host's libvirt's to
say (the agent asks it); its name and parameters are checked here.
"""
from __future__ import annotations

import ipaddress
import re

from . import macaddr
from .errors import InvalidArgument, shown

MAX_RATE_KBYTES = 1 << 31   # kbytes/s (~17 Tbit/s): beyond any NIC, and within the kernel's 64-bit tc rates
MAX_FILTER_PARAMETERS = 64

# libvirt's nwfilter names (virNWFilterIsValidChainName is stricter for chains; names are [a-zA-Z0-9_.:-]).
_FILTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
# libvirt's variable names (VALID_VARNAME): letters, digits and '_'; we ask for a letter first.
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
NO_FILTER = "none"            # what the CLI writes for "no filter"; never sent to an agent


def rate(value: int, field: str, what: str) -> int:
    """A positive rate or size within 1…2^31 (kbytes/s, kbytes); 0 is the caller's "none"."""
    if not 1 <= value <= MAX_RATE_KBYTES:
        raise InvalidArgument(field, f"{what} {shown(value)} is outside 1-{MAX_RATE_KBYTES} "
                                     f"({'kbytes' if what == 'burst' else 'kbytes/s'})")
    return value


def bandwidth_limit(average: int, peak: int, burst: int, field: str) -> None:
    """One direction: average is required once peak or burst is given; peak below average is no peak."""
    if average == 0:
        if peak or burst:
            raise InvalidArgument(f"{field}.average", "an average rate is required when peak or burst is given")
        return
    rate(average, f"{field}.average", "average")
    if peak:
        rate(peak, f"{field}.peak", "peak")
        if peak < average:
            raise InvalidArgument(f"{field}.peak", f"peak {peak} kbytes/s is below the average {average} kbytes/s")
    if burst:
        rate(burst, f"{field}.burst", "burst")


def filter_name(name: str, field: str) -> str:
    if not _FILTER_NAME.fullmatch(name or ""):
        raise InvalidArgument(field, f"filter name {shown(name)}: 1-64 letters, digits, '_', '.', ':', '-'")
    return name


def filter_parameter(name: str, value: str, field: str) -> tuple[str, str]:
    """A filter parameter: a variable name, and an IP address or a MAC (what the default filters take:
    IP, IPV6, MAC, DHCPSERVER…). The value comes back canonical (compressed IPv6, lower-case MAC)."""
    if not _PARAMETER_NAME.fullmatch(name or ""):
        raise InvalidArgument(f"{field}.name", f"filter parameter name {shown(name)}: 1-64 letters, digits and '_', "
                                               "starting with a letter")
    try:
        return name, str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return name, macaddr.canonical(value)
    except ValueError:
        raise InvalidArgument(f"{field}.value", f"filter parameter {name}={shown(value)} is neither an IP address "
                                                "nor a MAC address") from None
