"""What this host's kernel can build, and which of its links are NICs.

Module lists and /proc/config.gz lie in containers and under custom kernels;
the only reliable answer to "can I make a macvtap here?" is to make one. Each
kind is probed once per process with a throwaway device that is deleted at
once, in whatever namespace `ipr` talks to.

A process killed between making and deleting a probe device leaves it
behind, so the agent removes every `vfprobe<N>[p|u]` device at start, before
anything else (`remove_probe_leftovers`): the prefix is the agent's own.
(A throwaway network namespace was measured as the alternative: about 30 ms
more than the 140 ms probe, but a named one is itself left behind by a kill
(its /run/netns mount), and an unnamed one needs a forked child, which a
process already running gRPC threads must not make. The cleanup at start
covers the same kill for nothing.)
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net import crashpoints
from virtfleet import failpoints
from virtfleet.v1 import netstate_pb2

FEATURES = ("bridge", "tun", "veth", "macvlan", "macvtap", "vxlan", "bond", "vlan", "dummy")
PROBE_PREFIX = "vfprobe"
PROBE_NAME = re.compile(rf"{PROBE_PREFIX}\d+[pu]?")

# Link kinds that are never the host's way out: software devices made on top of NICs.
_NOT_NICS = {"bridge", "tun", "macvtap", "macvlan", "bond", "vlan", "vxlan", "dummy", "team"}

_cache: list[str] | None = None
_cache_lock = threading.Lock()


def kernel_features(ipr: IPRoute, *, refresh: bool = False) -> list[str]:
    """Kinds from FEATURES this kernel creates, in FEATURES order.

    Probed once per process: the answer changes only when modules are loaded,
    and `refresh` is for exactly that.
    """
    global _cache
    with _cache_lock:
        if _cache is None or refresh:
            _cache = _probe_all(ipr)
        return list(_cache)


def nics(state: netstate_pb2.NetworkState) -> list[str]:
    """Physical NICs, or in the lab veths whose other end is outside this host."""
    found = []
    for link in state.links:
        if link.link_type != "ether" or link.kind in _NOT_NICS:
            continue
        if link.kind == "veth" and link.link_netnsid < 0:
            continue  # both ends here: plumbing inside the host, not a way out
        if link.kind in ("", "veth"):
            found.append(link.name)
    return found


def remove_probe_leftovers(ipr: IPRoute) -> list[str]:
    """Delete the devices a killed probe left; returns their names (at agent start, before any probe)."""
    left = sorted(name for msg in ipr.link("dump")
                  if PROBE_NAME.fullmatch(name := msg.get_attr("IFLA_IFNAME") or ""))
    for name in left:
        _delete(ipr, name)  # a veth's peer goes with it: ENODEV then is fine
    return left


def _probe_all(ipr: IPRoute) -> list[str]:
    taken = {msg.get_attr("IFLA_IFNAME") for msg in ipr.link("dump")}
    name, lower, upper = next(
        names
        for n in itertools.count()
        if not taken & set(names := (f"{PROBE_PREFIX}{n}", f"{PROBE_PREFIX}{n}p", f"{PROBE_PREFIX}{n}u"))
    )
    found: dict[str, bool] = {}
    # macvlan, macvtap and vlan need an Ethernet device below them: the veth probe's peer.
    found["veth"] = _creates(ipr, name, keep=True, kind="veth", peer=lower)
    failpoints.hit(crashpoints.PROBE_CREATED)
    try:
        lower_index = ipr.link_lookup(ifname=lower)[0] if found["veth"] else 0
        stacked: dict[str, Callable[[], bool]] = {
            "macvlan": lambda: _creates(ipr, upper, kind="macvlan", link=lower_index, macvlan_mode="bridge"),
            "macvtap": lambda: _creates(ipr, upper, kind="macvtap", link=lower_index, macvtap_mode="bridge"),
            "vlan": lambda: _creates(ipr, upper, kind="vlan", link=lower_index, vlan_id=4000),
        }
        for kind, probe in stacked.items():
            found[kind] = found["veth"] and probe()
    finally:
        if found["veth"]:
            _delete(ipr, name)  # its peer goes with it
    found["bridge"] = _creates(ipr, name, kind="bridge")
    found["tun"] = _creates(ipr, name, kind="tuntap", mode="tap")
    found["vxlan"] = _creates(ipr, name, kind="vxlan", vxlan_id=4000)
    found["bond"] = _creates(ipr, name, kind="bond")
    found["dummy"] = _creates(ipr, name, kind="dummy")
    return [kind for kind in FEATURES if found.get(kind)]


def _creates(ipr: IPRoute, name: str, *, keep: bool = False, **spec: object) -> bool:
    try:
        ipr.link("add", ifname=name, **spec)
    except (NetlinkError, OSError):
        return False
    if not keep:
        _delete(ipr, name)
    return True


def _delete(ipr: IPRoute, name: str) -> None:
    try:
        ipr.link("del", ifname=name)
    except NetlinkError as error:
        if error.code != 19:  # ENODEV: went with its peer or parent already
            raise
