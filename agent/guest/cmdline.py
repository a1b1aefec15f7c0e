"""The test guest's kernel command line: pure functions, shared by the agent, the tests and the benchmark.

Static addresses are keyed by MAC (`vf.ip=MAC=ADDR/PREFIX[,MAC=ADDR/PREFIX…]`), not by
interface name: the guest names its NICs by PCI slot order, which the caller may not
know yet, while the MAC is the caller's own choice. A NIC the parameter does not name
asks DHCP.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from virtfleet import macaddr

BASE_CMDLINE = "console=ttyS0 quiet"   # the serial console is the log the agent keeps per VM
STATIC_IP_PARAM = "vf.ip"
NICS_UP_MARKER = "virtfleet-guest: nics up"   # printed once every NIC present at boot is configured
NIC_MARKER_PREFIX = "virtfleet-guest: nic "  # one line per NIC configured (boot or hot-plug): NAME MAC STATE ADDR


def static_ip_arg(addresses: Mapping[str, str]) -> str:
    """`vf.ip=…` for {MAC: ADDR/PREFIX}; "" for none. Raises ValueError on a bad MAC or address."""
    pairs = []
    for mac, addr in addresses.items():
        iface = ipaddress.ip_interface(addr)          # ValueError names the text
        if "/" not in addr:
            raise ValueError(f"{addr!r}: give the prefix length (ADDR/PREFIX)")
        pairs.append(f"{macaddr.canonical(mac)}={iface.with_prefixlen}")
    return f"{STATIC_IP_PARAM}={','.join(pairs)}" if pairs else ""


def parse_static_ips(cmdline: str) -> dict[str, str]:
    """The inverse of static_ip_arg over a whole command line (the guest's /init does the same in sh)."""
    found: dict[str, str] = {}
    for word in cmdline.split():
        if word.startswith(STATIC_IP_PARAM + "="):
            for pair in word.split("=", 1)[1].split(","):
                mac, _, addr = pair.partition("=")
                if mac and addr:
                    found[mac.lower()] = addr
    return found


def join_cmdline(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())
