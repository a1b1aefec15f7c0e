"""What the guest itself reports through qemu-guest-agent: its NIC names, MACs and addresses.

libvirt's agent source for interface addresses runs qemu-ga's guest-network-get-interfaces.
No agent answering (no OS yet, no qemu-ga, no channel) is an answer, not an error:
agent_connected=false. The guest's loopback is left out; the rest is sorted by name
in natural order (eth2 before eth10), which for the test guest is PCI slot order.
"""
from __future__ import annotations

import re

import libvirt

from virtfleet.errors import FailedPrecondition

from .connection import Hypervisor, translate
from .lifecycle import _lookup  # one lookup rule (NotFound naming the VM) for every VM call
from .spec import GuestInterface, GuestInterfaces

DEFAULT_TIMEOUT_S = 5
# libvirt's answers when no guest agent talks to it: not connected, not in sync, timed out, not configured.
_NO_AGENT = {libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_AGENT_UNSYNCED, libvirt.VIR_ERR_OPERATION_TIMEOUT,
             libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_OPERATION_UNSUPPORTED}
_ADDR_FAMILY = {libvirt.VIR_IP_ADDR_TYPE_IPV4: 4, libvirt.VIR_IP_ADDR_TYPE_IPV6: 6}


def guest_interfaces(hv: Hypervisor, vm: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> GuestInterfaces:
    dom = _lookup(hv.conn, vm)
    if not dom.isActive():
        raise FailedPrecondition(f"VM {vm!r} is not running; only a running guest can say what it calls its NICs")
    _set_agent_timeout(dom, timeout_s or DEFAULT_TIMEOUT_S)
    try:
        found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
    except libvirt.libvirtError as err:
        if err.get_error_code() in _NO_AGENT:
            return GuestInterfaces(agent_connected=False)
        if err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and not dom.isActive():
            raise FailedPrecondition(f"VM {vm!r} stopped while its guest agent was asked") from err
        raise translate(err, f"asking VM {vm!r}'s guest agent for its interfaces") from err
    return GuestInterfaces(agent_connected=True, interfaces=parse_interfaces(found))


def _set_agent_timeout(dom: libvirt.virDomain, timeout_s: int) -> None:
    """How long libvirt waits for this guest's agent (a per-domain setting of the running domain)."""
    try:
        dom.agentSetResponseTimeout(timeout_s)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:  # the test driver has no agent to wait for
            raise translate(err, "setting the guest agent's timeout") from err


def parse_interfaces(found: dict) -> tuple[GuestInterface, ...]:
    """libvirt's {name: {hwaddr, addrs: [{type, addr, prefix}]}} -> typed, loopback left out, natural order."""
    out = []
    for name, info in (found or {}).items():
        mac = (info.get("hwaddr") or "").lower()
        if name == "lo" or mac in ("", "00:00:00:00:00:00"):
            continue
        addrs = tuple(f"{a['addr']}/{a['prefix']}" for a in info.get("addrs") or []
                      if a.get("type") in _ADDR_FAMILY)
        out.append(GuestInterface(name=name, mac=mac, addresses=addrs))
    return tuple(sorted(out, key=lambda i: _natural(i.name)))


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
