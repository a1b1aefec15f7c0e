"""A host's network state printed as the admin's own tools print it on the host.

Admins compare what the manager shows with what they see over ssh; any
difference in spacing or wording reads as drift. So this reproduces
`ip addr show` of iproute2 6.1 and `brctl show` of bridge-utils 1.7, trailing
spaces included, from the state the agent reported.
"""

from __future__ import annotations

from virtfleet.v1 import netstate_pb2

_BRCTL_HEADER = "bridge name\tbridge id\t\tSTP enabled\tinterfaces\n"
_BRCTL_CONTINUATION = "\n" + "\t" * 7


def render_ip_addr(state: netstate_pb2.NetworkState) -> str:
    """Text of `ip addr show` for the state, links in index order."""
    return "".join(_link_block(link) for link in sorted(state.links, key=lambda link: link.index))


def render_brctl_show(state: netstate_pb2.NetworkState) -> str:
    """Text of `brctl show`; bridges and their ports in C-locale name order, as scandir sorts them."""
    lines = [_BRCTL_HEADER]
    bridges = sorted((link for link in state.links if link.kind == "bridge"), key=lambda link: link.name.encode())
    for bridge in bridges:
        stp = "yes" if bridge.bridge.stp_enabled else "no"
        ports = _BRCTL_CONTINUATION.join(sorted(bridge.bridge.ports, key=str.encode))
        lines.append(f"{bridge.name}\t\t{bridge.bridge.bridge_id}\t{stp}\t\t{ports}\n")
    return "".join(lines)


def _link_block(link: netstate_pb2.Link) -> str:
    return _link_line(link) + _link_layer_line(link) + "".join(_address_lines(a) for a in link.addresses)


def _link_line(link: netstate_pb2.Link) -> str:
    parts = [f"{link.index}: {link.name}{_peer_suffix(link)}: <{_flags(link.flags)}> ", f"mtu {link.mtu} "]
    if link.qdisc:
        parts.append(f"qdisc {link.qdisc} ")
    if link.master:
        parts.append(f"master {link.master} ")
    if link.oper_state:
        parts.append(f"state {link.oper_state} ")
    parts.append(f"group {link.group or 'default'} ")
    if link.txqlen:
        parts.append(f"qlen {link.txqlen}")
    return "".join(parts) + "\n"


def _peer_suffix(link: netstate_pb2.Link) -> str:
    """`name@peer`: a peer in another namespace can only be shown by its index there."""
    if not link.link_index:
        return ""
    if link.link_netnsid >= 0:
        return f"@if{link.link_index}"
    return f"@{link.parent or f'if{link.link_index}'}"


def _flags(flags: list[str]) -> str:
    """M-DOWN is glued on with its own comma, even when no flag precedes it."""
    words = [flag for flag in flags if flag != "M-DOWN"]
    return ",".join(words) + (",M-DOWN" if "M-DOWN" in flags else "")


def _link_layer_line(link: netstate_pb2.Link) -> str:
    line = f"    link/{link.link_type} {link.mac}"
    if link.broadcast:
        line += (" peer " if "POINTOPOINT" in link.flags else " brd ") + link.broadcast
    if link.permaddr:
        line += f" permaddr {link.permaddr}"
    if link.link_netnsid >= 0:
        line += f" link-netns {link.link_netns}" if link.link_netns else f" link-netnsid {link.link_netnsid}"
    return line + "\n"


def _address_lines(address: netstate_pb2.Address) -> str:
    line = f"    {address.family} {address.address}/{address.prefixlen} "
    if address.broadcast:
        line += f"brd {address.broadcast} "
    line += f"scope {address.scope} "
    line += "".join(f"{flag} " for flag in address.flags)
    line += address.label
    lifetimes = f"       valid_lft {_lifetime(address.valid_lft)} preferred_lft {_lifetime(address.preferred_lft)}"
    return f"{line}\n{lifetimes}\n"


def _lifetime(seconds: int) -> str:
    return "forever" if seconds < 0 else f"{seconds}sec"
