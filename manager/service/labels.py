"""Network labels: a network and a host NIC sharing a label put the network on that NIC.

A label change is recorded first (its own transaction), then every host it
concerns gets ONE setupNetworks with everything the change means for it
(NetworkService.setup_host: the agent applies it whole or rolls it back), one
host after another, no transaction open meanwhile. A host that refuses, or
cannot be reached, is left as it was and reported in the outcome; the label
stays recorded (as in oVirt): setting the same label again is harmless and
applies what is still missing, on every host.

Only networks attached to the host's cluster are placed by labels
(`network attach-cluster`), and a network already attached to another NIC of
the host by hand is left there (reported as skipped).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from virtfleet.errors import NotFound, VirtfleetError
from virtfleet.v1 import fleet_pb2

from ..domain.labels import Labels, check_label, plan
from ..domain.hostinput import check_host_name
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.networks import LabelledHost
from .networks import NetworkService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostLabelChange:
    host: str
    attached: list[str] = field(default_factory=list)   # "NET=NIC"
    detached: list[str] = field(default_factory=list)
    applied: bool = False
    error: str = ""
    skipped: list[str] = field(default_factory=list)


def _with(labels: Labels, key: str, label: str, present: bool) -> dict[str, frozenset[str]]:
    """`labels` with `label` added to (present) or taken from `key`."""
    changed = dict(labels)
    have = changed.get(key, frozenset())
    changed[key] = have | {label} if present else have - {label}
    return changed


class LabelService:
    def __init__(self, pool: ConnectionPool, networks: NetworkService) -> None:
        self._pool = pool
        self._networks = networks

    # -- network labels ----------------------------------------------------------------------

    def label_network(self, network: str, label: str) -> list[HostLabelChange]:
        check_label(label)
        with self._pool.connection() as conn, conn.transaction():
            net = net_store.get_network(conn, network)
            net_store.add_network_label(conn, net.id, label)
            hosts = net_store.labelled_hosts(conn, label=label)
        return [self._apply(h, (h.nic_labels, _with(h.network_labels, network, label, False)),
                            (h.nic_labels, h.network_labels)) for h in hosts]

    def unlabel_network(self, network: str, label: str) -> list[HostLabelChange]:
        check_label(label)
        with self._pool.connection() as conn, conn.transaction():
            net = net_store.get_network(conn, network)
            net_store.remove_network_label(conn, net, label)
            hosts = net_store.labelled_hosts(conn, label=label)
        return [self._apply(h, (h.nic_labels, _with(h.network_labels, network, label, True)),
                            (h.nic_labels, h.network_labels)) for h in hosts]

    # -- host NIC labels -----------------------------------------------------------------------

    def label_host_nic(self, host: str, nic: str, label: str) -> list[HostLabelChange]:
        check_host_name(host)
        check_label(label)
        if nic not in self._networks.host_links(host):
            raise NotFound(f"host {host} reports no NIC or bond {nic!r} (nic)")
        with self._pool.connection() as conn, conn.transaction():
            record = host_store.get_host(conn, host, lock=True)
            net_store.add_nic_label(conn, record.id, host, nic, label)
            found = net_store.labelled_hosts(conn, host=host)
        return [self._apply(h, (_with(h.nic_labels, nic, label, False), h.network_labels),
                            (h.nic_labels, h.network_labels)) for h in found]

    def unlabel_host_nic(self, host: str, nic: str, label: str) -> list[HostLabelChange]:
        check_host_name(host)
        check_label(label)
        with self._pool.connection() as conn, conn.transaction():
            record = host_store.get_host(conn, host, lock=True)
            net_store.remove_nic_label(conn, record.id, host, nic, label)
            found = net_store.labelled_hosts(conn, host=host)
        return [self._apply(h, (_with(h.nic_labels, nic, label, True), h.network_labels),
                            (h.nic_labels, h.network_labels)) for h in found]

    # -- one host ----------------------------------------------------------------------------

    def _apply(self, host: LabelledHost, before: tuple[Labels, Labels], after: tuple[Labels, Labels]) -> HostLabelChange:
        """One setupNetworks for everything the change means on `host`; its refusal is reported, not raised."""
        with self._pool.connection() as conn:
            record = host_store.get_host(conn, host.host)
            attached = {a.network: a.nic for a in net_store.attachments(conn, record.id)}
        todo = plan(before=before, after=after, attached=attached)
        attach = [f"{net}={nic}" for net, nic in todo.attach]
        if todo.empty:
            return HostLabelChange(host.host, applied=True, skipped=todo.skipped)
        try:
            self._networks.setup_host(
                host.host, attach=[fleet_pb2.HostAttachment(network=net, nic=nic) for net, nic in todo.attach],
                detach=todo.detach, bonds=[], remove_bonds=[], plan=False, connectivity_timeout_s=0)
        except VirtfleetError as err:
            log.warning("host %s: labels could not change its networks (%s); it is as it was", host.host, err)
            return HostLabelChange(host.host, attach, todo.detach, False, str(err), todo.skipped)
        log.info("host %s: labels attached %s, detached %s", host.host, attach or "nothing", todo.detach or "nothing")
        return HostLabelChange(host.host, attach, todo.detach, True, "", todo.skipped)

