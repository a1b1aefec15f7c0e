"""The difference between two network states, and applying it.

Both ends use this module: the agent (and the fleet simulator) computes a
delta from the state the consumer already holds, the manager applies it. A
link is the unit of change — it is small and carries its addresses and bridge
ports, so replacing it whole keeps the rule simple and exact: applying
`diff(old, new)` to `old` gives `new`, links ordered by index as read.
Routes have no identity of their own and are added or removed as values;
their order (which no admin tool promises either) may differ.
"""
from __future__ import annotations

from virtfleet.v1 import netstate_pb2


def diff(old: netstate_pb2.NetworkState, new: netstate_pb2.NetworkState) -> netstate_pb2.NetworkStateDelta:
    """What turns `old` into `new`; empty lists when nothing but the time changed."""
    delta = netstate_pb2.NetworkStateDelta()
    before = {link.index: link for link in old.links}
    after = {link.index: link for link in new.links}
    delta.changed_links.extend(link for index, link in after.items() if before.get(index) != link)
    delta.removed_link_indexes.extend(index for index in before if index not in after)
    old_routes = {_key(r): r for r in old.routes}
    new_routes = {_key(r): r for r in new.routes}
    delta.added_routes.extend(r for key, r in new_routes.items() if key not in old_routes)
    delta.removed_routes.extend(r for key, r in old_routes.items() if key not in new_routes)
    if new.hostname != old.hostname:
        delta.hostname = new.hostname
    if new.HasField("taken_at"):
        delta.taken_at.CopyFrom(new.taken_at)
    return delta


def is_empty(delta: netstate_pb2.NetworkStateDelta) -> bool:
    return not (delta.changed_links or delta.removed_link_indexes or delta.added_routes
                or delta.removed_routes or delta.hostname)


def change_count(delta: netstate_pb2.NetworkStateDelta) -> int:
    """Links and routes touched: what a delta-ingestion rate counts."""
    return (len(delta.changed_links) + len(delta.removed_link_indexes)
            + len(delta.added_routes) + len(delta.removed_routes))


def apply_delta(state: netstate_pb2.NetworkState, delta: netstate_pb2.NetworkStateDelta) -> netstate_pb2.NetworkState:
    """A new state: `state` with `delta` applied (the input is left as it was)."""
    links = {link.index: link for link in state.links}
    for index in delta.removed_link_indexes:
        links.pop(index, None)
    for link in delta.changed_links:
        links[link.index] = link
    removed = {_key(r) for r in delta.removed_routes}
    routes = [r for r in state.routes if _key(r) not in removed]
    routes.extend(delta.added_routes)
    result = netstate_pb2.NetworkState(
        hostname=delta.hostname or state.hostname,
        links=[links[index] for index in sorted(links)],
        routes=routes,
    )
    taken_at = delta.taken_at if delta.HasField("taken_at") else state.taken_at
    if delta.HasField("taken_at") or state.HasField("taken_at"):
        result.taken_at.CopyFrom(taken_at)
    return result


def _key(route: netstate_pb2.Route) -> bytes:
    return route.SerializeToString(deterministic=True)
