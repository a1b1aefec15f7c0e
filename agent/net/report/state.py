"""Read the host's whole network state from the kernel in three netlink dumps.

The result carries what `ip addr show`, `ip route` (main table) and
`brctl show` print, already spelled the way they print it, so the manager can
render a report that matches the host byte for byte without a netlink socket.
One dump each of links, addresses and routes keeps a read cheap enough to run
on every kernel event; nothing here asks the kernel about a single link. The
dumps are decoded by agent.net.netlink.dump over a raw socket of their own:
pyroute2's generic decoding made a read of a thousand links take most of a
second.
"""

from __future__ import annotations

from pyroute2 import IPRoute

from agent.net.netlink import dump
from virtfleet.v1 import netstate_pb2


def read_state(ipr: IPRoute) -> netstate_pb2.NetworkState:
    """Everything an admin would see in the namespace `ipr` talks to."""
    return dump.read_state(ipr.status.get("netns"))
