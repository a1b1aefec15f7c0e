"""Logical networks, their clusters, and their attachment to hosts through the agent's setupNetworks.

A cluster's required networks are watched by `operational` (service/operational.py):
every change to what a host is recorded to carry, or to what a cluster requires,
has it judge the hosts again.

A change call that ends without a reply (UNAVAILABLE) may have been made all
the same: the host's next report settles it (service.lostreplies), and the
error says so.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.json_format import ParseDict
from psycopg_pool import ConnectionPool

from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from virtfleet.hostnet.netcompare import compare_attachment
from virtfleet.v1 import fleet_pb2, hostnet_pb2, netstate_pb2

from ..agents import AgentClients, HostMonitor
from ..domain import netinput
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.database import reading
from ..store.hosts import HostRecord
from ..store.networks import AttachmentRecord, BondRecord, ClusterRecord, NetworkRecord
from .lostreplies import LostReplies, Position
from .operational import OperationalCheck
from .readmodel import ReadModel

# What a network's view is made of (the read model drops its copy when one of them changes).
NETWORK_TABLES = ("networks", "datacenters", "clusters", "cluster_networks", "network_labels")

log = logging.getLogger(__name__)

MANAGEMENT_NETWORK = "ovirtmgmt"


@dataclass(frozen=True)
class Difference:
    field: str
    expected: str
    found: str


@dataclass(frozen=True)
class NetworkSync:
    attachment: AttachmentRecord
    differences: list[Difference]

    @property
    def in_sync(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class HostNetworks:
    host: str
    networks: list[NetworkSync]
    bonds: list[BondRecord]


@dataclass(frozen=True)
class NetworkView:
    """A network with the clusters it is attached to (required or not) and its labels."""

    network: NetworkRecord
    clusters: list[ClusterRecord]
    labels: list[str]


@dataclass(frozen=True)
class SetupResult:
    steps: list[str]
    applied: bool
    view: HostNetworks | None


def agent_attachment(net: NetworkRecord, a: AttachmentRecord) -> hostnet_pb2.NetworkAttachment:
    """What the host must carry: the logical network's definition plus the host's attachment."""
    return hostnet_pb2.NetworkAttachment(
        network=net.name, nic=a.nic, vlan=net.vlan or 0, mtu=net.mtu, bridged=net.vm_network,
        ipv4=hostnet_pb2.Ipv4Config(method=a.ipv4_method, address=a.ipv4_address or "",
                                    prefixlen=a.ipv4_prefixlen or 0, gateway=a.ipv4_gateway or ""),
        default_route=a.default_route,
    )


def check_in_cluster(network: str, in_cluster: frozenset[str], host: HostRecord, field: str) -> None:
    """A host carries only its cluster's networks (as in oVirt): a network outside is refused, naming both."""
    if network not in in_cluster:
        raise FailedPrecondition(f"network {network} is not attached to cluster {host.cluster} of host {host.name} "
                                 f"({field}); a host carries only its cluster's networks: "
                                 f"`network attach-cluster {network} {host.cluster}` first")


def agent_bond(b: BondRecord) -> hostnet_pb2.Bond:
    return hostnet_pb2.Bond(name=b.name, slaves=b.slaves, mode=b.mode, options=b.options)


# The agent's SetupNetworksRequest holds the admin's lists in the same order, under other names.
_ADMIN_LISTS = {"networks": "attach", "remove_networks": "detach", "bonds": "bonds", "remove_bonds": "remove_bonds"}
# An agent attachment's VLAN, MTU and bridging come from the network's definition: the admin chose the network.
_FROM_DEFINITION = ("vlan", "mtu", "bridged")


def admin_field(agent_field: str) -> str:
    """The field of the admin's SetupHostNetworks request that an agent's field violation is about.

    `networks[1].nic` → `attach[1].nic`, `bonds[0].mode` stays; paths the request
    does not hold (the agent's running configuration) are passed on unchanged.
    """
    head, dot, rest = agent_field.partition(".")
    name, bracket, index = head.partition("[")
    admin = _ADMIN_LISTS.get(name)
    if admin is None or not bracket:
        return agent_field
    if admin == "attach" and rest.split(".")[0] in _FROM_DEFINITION:
        return f"attach[{index}.network"
    return f"{admin}[{index}{dot}{rest}"


class NetworkService:
    def __init__(self, pool: ConnectionPool, agents: AgentClients, monitor: HostMonitor | None = None,
                 record_system: Callable[..., None] | None = None, read_model: ReadModel | None = None) -> None:
        self._pool = pool
        self._views = read_model.group("networks", NETWORK_TABLES, _load_views) if read_model else None
        self._agents = agents
        self._monitor = monitor  # the freshest state of each host, kept from its agent's stream
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self.lost_replies = LostReplies(pool, agents, monitor, record_system=self._record_system,
                                        recorded=self._rejudge)
        self.operational = OperationalCheck(pool, monitor, agent_attachment, record_system=self._record_system)

    # -- logical networks -------------------------------------------------------------

    def create(self, *, name: str, datacenter: str, vlan: int, mtu: int, vm_network: bool,
               description: str) -> NetworkRecord:
        net = netinput.network_definition(name, vlan, mtu, description=description)
        with self._pool.connection() as conn:
            return net_store.insert_network(conn, name=net.name, datacenter=datacenter or "Default", vlan=net.vlan,
                                            mtu=net.mtu, vm_network=vm_network, description=net.description)

    def list(self) -> list[NetworkRecord]:
        with reading(self._pool) as conn:
            return net_store.list_networks(conn)

    def get(self, name: str) -> NetworkRecord:
        with reading(self._pool) as conn:
            return net_store.get_network(conn, name)

    def delete(self, name: str) -> None:
        if name == MANAGEMENT_NETWORK:
            raise FailedPrecondition("ovirtmgmt is the management network and cannot be deleted")
        with self._pool.connection() as conn:
            net_store.delete_network(conn, name)

    def view(self, name: str, datacenter: str = "Default") -> NetworkView:
        model = self._views.get() if self._views is not None else None
        if model is not None and (found := model.by_name.get((datacenter, name))) is not None:
            return found
        with reading(self._pool) as conn:     # also the one place that says which network does not exist
            return _view(conn, net_store.get_network(conn, name, datacenter))

    def views(self) -> list[NetworkView]:
        model = self._views.get() if self._views is not None else None
        if model is not None:
            return list(model.ordered)
        with reading(self._pool) as conn:
            return [_view(conn, n) for n in net_store.list_networks(conn)]

    # -- clusters --------------------------------------------------------------------------

    def attach_cluster(self, network: str, cluster: str, *, required: bool, migration: bool = False) -> NetworkView:
        """Attach (or change whether it is required, and whether it is the cluster's migration network: setting
        that moves the role from the cluster's other network); hosts are judged again at once."""
        with self._pool.connection() as conn, conn.transaction():
            net = net_store.get_network(conn, network)
            net_store.attach_to_cluster(conn, net, cluster, required, migration)
        self.operational.refresh()
        return self.view(network)

    def detach_cluster(self, network: str, cluster: str) -> NetworkView:
        if network == MANAGEMENT_NETWORK:
            raise FailedPrecondition("ovirtmgmt is the management network and stays attached to every cluster; "
                                     "make it optional instead: network attach-cluster ovirtmgmt CLUSTER --optional")
        with self._pool.connection() as conn, conn.transaction():
            net = net_store.get_network(conn, network)
            net_store.detach_from_cluster(conn, net, cluster)
        self.operational.refresh()
        return self.view(network)

    # -- host attachments ----------------------------------------------------------------

    def setup_host(self, host_name: str, *, attach: list[fleet_pb2.HostAttachment], detach: list[str],
                   bonds: list[hostnet_pb2.Bond], remove_bonds: list[str], plan: bool,
                   connectivity_timeout_s: int) -> SetupResult:
        """Check, ask the agent, then record: no transaction is open while the agent works."""
        netinput.setup_limits(len(attach), len(detach), len(bonds), len(remove_bonds), connectivity_timeout_s)
        with self._pool.connection() as conn:
            host = host_store.get_host(conn, host_name)
            networks = {n.name: n for n in net_store.list_networks(conn, host.datacenter)}
            current = {a.network: a for a in net_store.attachments(conn, host.id)}
            in_cluster = net_store.host_cluster_network_names(conn, host.id)
        upserts = [self._attachment(networks, a, f"attach[{i}]") for i, a in enumerate(attach)]
        for i, (net, _) in enumerate(upserts):
            check_in_cluster(net.name, in_cluster, host, f"attach[{i}].network")
        detached = []
        for i, name in enumerate(detach):
            if name not in current:
                raise NotFound(f"network {name!r} is not attached to host {host_name} (detach[{i}])")
            detached.append(networks[name])
        for i, b in enumerate(bonds):
            netinput.check_bond(b, f"bonds[{i}]")
        bond_records = [BondRecord(b.name, list(b.slaves), b.mode, dict(b.options)) for b in bonds]
        request = hostnet_pb2.SetupNetworksRequest(
            networks=[agent_attachment(net, a) for net, a in upserts], remove_networks=[n.name for n in detached],
            bonds=[agent_bond(b) for b in bond_records], remove_bonds=remove_bonds,
            connectivity_timeout_s=connectivity_timeout_s, dry_run=plan,
        )
        touched = ([net.name for net, _ in upserts] + [n.name for n in detached],
                   [b.name for b in bond_records] + list(remove_bonds))
        sent_at = self.lost_replies.position(host.name)
        try:
            reply = self._agents.call(host.name, host.endpoint, lambda s, t: s.SetupNetworks(request, timeout=t))
        except InvalidArgument as err:
            raise InvalidArgument(admin_field(err.field), err.description) from None
        except Unavailable as exc:
            if plan:
                raise
            raise self.reply_lost(host.name, sent_at, *touched, exc) from None
        if plan:
            return SetupResult(list(reply.steps), False, None)
        if reply.change_id:
            self._confirm(host.name, host.endpoint, reply.change_id, connectivity_timeout_s, sent_at, touched)
        with self._pool.connection() as conn, conn.transaction():
            self._recheck(conn, host, [net for net, _ in upserts])
            net_store.record_host_change(conn, host.id, upsert=upserts, detach=detached, bonds_upsert=bond_records,
                                         bonds_remove=list(remove_bonds))
        self._rejudge()
        log.info("host %s: setupNetworks applied (%d steps)", host_name, len(reply.steps))
        return SetupResult(list(reply.steps), True, self.host_view(host_name, reply.state))

    def _rejudge(self) -> None:
        """The change is made and recorded; judging the hosts again must not turn it into an error."""
        try:
            self.operational.refresh()
        except Exception as exc:
            log.warning("could not judge the hosts' required networks again (%s); the next report does", exc)
            self.operational.forget_all()

    @staticmethod
    def _recheck(conn, host: HostRecord, networks: list[NetworkRecord]) -> None:
        """What the record depends on may have gone while the agent worked: the host, the networks."""
        if host_store.get_host(conn, host.name, lock=True).id != host.id:
            raise FailedPrecondition(f"host {host.name} was removed and enrolled again while its networks changed")
        gone = sorted({n.name for n in networks} - net_store.lock_networks(conn, [n.id for n in networks]))
        if gone:
            raise FailedPrecondition(f"network(s) {', '.join(gone)} were deleted while host {host.name} was being "
                                     "changed; the host carries them now, unrecorded (the audit shows them as "
                                     "unexpected)")

    def _confirm(self, name: str, endpoint: str, change_id: str, timeout_s: int, sent_at: Position | None,
                 touched: tuple[list[str], list[str]]) -> None:
        """Reaching the agent again over a fresh call is the connectivity check."""
        try:
            self._agents.call(name, endpoint, lambda s, t: s.CommitNetworks(
                hostnet_pb2.CommitNetworksRequest(change_id=change_id), timeout=min(t, max(timeout_s, 1))))
        except Unavailable as exc:
            # The commit may have been saved before its reply was lost: the next report settles which.
            self.lost_replies.note(name, sent_at, *touched)
            self._record_system("network.confirm_missed", "host", name,
                                {"change_id": change_id, "connectivity_timeout_s": timeout_s,
                                 "networks": touched[0], "bonds": touched[1]},
                                f"the commit did not reach the agent ({exc.message}); it rolls the change back "
                                f"within {timeout_s} s unless the commit arrived")
            raise Unavailable(f"host {name} became unreachable after the change; its agent rolls the change back "
                              f"within {timeout_s} s unless the commit reached it, which the manager learns and "
                              f"records at the agent's next report ({exc.message})") from None

    def reply_lost(self, host_name: str, sent_at: Position | None, networks: list[str], bonds: list[str],
                   exc: Unavailable) -> Unavailable:
        """Note a change call that got no reply; the error to raise says what happens next."""
        self.lost_replies.note(host_name, sent_at, networks, bonds)
        return Unavailable(f"{exc.message}; if the change was made before the agent went away, the manager "
                           f"records it at the agent's next report (`host networks {host_name}` shows it then)")

    def _attachment(self, networks: dict[str, NetworkRecord], a: fleet_pb2.HostAttachment, field: str) -> tuple[NetworkRecord, AttachmentRecord]:
        net = networks.get(a.network)
        if net is None:
            raise NotFound(f"network {a.network!r} does not exist ({field}.network)")
        a = netinput.host_attachment(a, field)
        ipv4 = a.ipv4
        return net, AttachmentRecord(net.name, a.nic, ipv4.method, ipv4.address or None, ipv4.prefixlen or None,
                                     ipv4.gateway or None, a.default_route)

    def record_management(self, host_name: str, nic: str, state: netstate_pb2.NetworkState) -> None:
        """setup-management made ovirtmgmt: record it as desired, with the address it carries now."""
        bridge = next((l for l in state.links if l.name == MANAGEMENT_NETWORK), None)
        addr = next((a for a in bridge.addresses if a.family == "inet"), None) if bridge else None
        gateway = next((r.gateway for r in state.routes
                        if r.destination == "default" and r.device == MANAGEMENT_NETWORK), "")
        with self._pool.connection() as conn, conn.transaction():
            host = host_store.get_host(conn, host_name, lock=True)
            net = net_store.get_network(conn, MANAGEMENT_NETWORK, host.datacenter)
            att = AttachmentRecord(MANAGEMENT_NETWORK, nic, "static" if addr else "none",
                                   addr.address if addr else None, addr.prefixlen if addr else None,
                                   gateway or None, bool(gateway))
            net_store.record_host_change(conn, host.id, upsert=[(net, att)], detach=[], bonds_upsert=[],
                                         bonds_remove=[])
        self._rejudge()

    def _current_state(self, conn, host_name: str) -> netstate_pb2.NetworkState:
        """From the monitor's memory when it follows the host, else the last stored report."""
        held = self._monitor.current(host_name) if self._monitor else None
        if held is not None:
            return held.state
        report = host_store.get_report(conn, host_name)
        return (ParseDict(report.state, netstate_pb2.NetworkState(), ignore_unknown_fields=True)
                if report else netstate_pb2.NetworkState())

    def host_links(self, host_name: str) -> set[str]:
        """The names of the links the host reports now (its NICs, bonds, bridges…)."""
        with self._pool.connection() as conn:
            host_store.get_host(conn, host_name)
            return {link.name for link in self._current_state(conn, host_name).links}

    def host_view(self, host_name: str, state: netstate_pb2.NetworkState | None = None) -> HostNetworks:
        with self._pool.connection() as conn:
            host = host_store.get_host(conn, host_name)
            networks = {n.name: n for n in net_store.list_networks(conn, host.datacenter)}
            atts = net_store.attachments(conn, host.id)
            bond_list = net_store.bonds(conn, host.id)
            if state is None:
                state = self._current_state(conn, host_name)
        synced = []
        for a in atts:
            diffs = compare_attachment(agent_attachment(networks[a.network], a), state)
            synced.append(NetworkSync(a, [Difference(d.field, str(d.expected), str(d.found)) for d in diffs]))
        return HostNetworks(host_name, synced, bond_list)


def _view(conn, net: NetworkRecord) -> NetworkView:
    return NetworkView(net, net_store.network_clusters(conn, net.id), net_store.network_labels(conn, net.id))


@dataclass(frozen=True)
class _NetworkViews:
    ordered: tuple[NetworkView, ...]                  # as `views()` lists them: datacenter, then name
    by_name: dict[tuple[str, str], NetworkView]       # (datacenter, name)


def _load_views(conn) -> _NetworkViews:
    clusters, labels = net_store.all_network_clusters(conn), net_store.all_network_labels(conn)
    ordered = tuple(NetworkView(n, clusters.get(n.id, []), labels.get(n.id, [])) for n in net_store.list_networks(conn))
    return _NetworkViews(ordered, {(v.network.datacenter, v.network.name): v for v in ordered})
