"""Network labels: a network and a host NIC sharing a label put the network on that NIC.

A label change is recorded first (its own transaction), then every host it
concerns gets ONE setupNetworks with everything the change means for it
(NetworkService.setup_host: the agent applies it whole or rolls it back), one
host after another, no transaction open meanwhile. A host that refuses, or
cannot be reached, is left as it was and reported in the outcome; the label
stays recorded (as in oVirt): setting the same label again is harmless and
applies what is still missing, on every host.

A host that was unreachable, or not yet enrolled, when a label changed catches
up by itself: `catch_up`, called when the host (re)appears (service/labelcatchup.py
says when), attaches the labelled networks it is not recorded to carry in one
setupNetworks, and is quiet when nothing is missing.

Only networks attached to the host's cluster are placed by labels
(`network attach-cluster`), and a network already attached to another NIC of
the host by hand is left there (reported as skipped).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from virtfleet.errors import NotFound, Unavailable, VirtfleetError
from virtfleet.v1 import fleet_pb2

from ..agents import HostMonitor
from ..domain.labels import LabelPlan, Labels, check_label, missing, plan
from ..domain.hostinput import check_host_name
from ..store import hosts as host_store
from ..store import networks as net_store
from ..store.networks import LabelledHost
from .labelcatchup import LabelCatchUp
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
    def __init__(self, pool: ConnectionPool, networks: NetworkService, monitor: HostMonitor | None = None,
                 record_system: Callable[..., None] | None = None) -> None:
        self._pool = pool
        self._networks = networks
        self._record_system = record_system or (lambda *args, **kwargs: None)   # the audit trail's system events
        self.catching_up = (LabelCatchUp(monitor, self.catch_up, networks.lost_replies.pending)
                            if monitor is not None else None)

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

    # -- a host back, or first up --------------------------------------------------------------

    def catch_up(self, host: str, reported: Collection[str]) -> HostLabelChange | None:
        """The labelled networks `host` should carry on the NICs it `reported` and is not recorded to
        carry, attached in one setupNetworks, with an event; None (and nothing said) when none is missing.

        Unavailable is raised: the host went again, its next return tries again. A refusal is an event
        (network.labels_refused) and the host stays as it was.
        """
        with self._pool.connection() as conn:
            found = net_store.labelled_hosts(conn, host=host)
            if not found or not found[0].nic_labels:
                return None   # removed meanwhile, or no NIC of it labelled
            attached = self._attached(conn, host)
        todo = missing(found[0].nic_labels, found[0].network_labels, attached=attached, reported=reported)
        if todo.empty:
            return None
        change = self._setup(host, todo, raise_unavailable=True)
        if change.applied:
            self._record_system("network.labels_applied", "host", host,
                                {"attached": change.attached, "skipped": change.skipped},
                                "labelled networks the host lacked, attached as it reported again")
        else:
            self._record_system("network.labels_refused", "host", host,
                                {"attach": change.attached, "error": change.error, "skipped": change.skipped},
                                f"the host refused its labelled networks; it is as it was ({change.error})")
        return change

    # -- one host ----------------------------------------------------------------------------

    def _apply(self, host: LabelledHost, before: tuple[Labels, Labels], after: tuple[Labels, Labels]) -> HostLabelChange:
        """One setupNetworks for everything the change means on `host`; its refusal is reported, not raised."""
        with self._pool.connection() as conn:
            attached = self._attached(conn, host.host)
        todo = plan(before=before, after=after, attached=attached)
        if todo.empty:
            return HostLabelChange(host.host, applied=True, skipped=todo.skipped)
        return self._setup(host.host, todo)

    @staticmethod
    def _attached(conn, host: str) -> dict[str, str]:
        """network → NIC as the host's desired networks are recorded now."""
        return {a.network: a.nic for a in net_store.attachments(conn, host_store.get_host(conn, host).id)}

    def _setup(self, host: str, todo: LabelPlan, *, raise_unavailable: bool = False) -> HostLabelChange:
        attach = [f"{net}={nic}" for net, nic in todo.attach]
        try:
            self._networks.setup_host(
                host, attach=[fleet_pb2.HostAttachment(network=net, nic=nic) for net, nic in todo.attach],
                detach=todo.detach, bonds=[], remove_bonds=[], plan=False, connectivity_timeout_s=0)
        except Unavailable as err:
            if raise_unavailable:
                raise
            if self.catching_up is not None:
                self.catching_up.due(host)
            log.warning("host %s: unreachable, labels could not change its networks (%s); it gets them at its "
                        "next report", host, err)
            return HostLabelChange(host, attach, todo.detach, False,
                                   f"{err} (its labelled networks are attached at its next report)", todo.skipped)
        except VirtfleetError as err:
            log.warning("host %s: labels could not change its networks (%s); it is as it was", host, err)
            return HostLabelChange(host, attach, todo.detach, False, str(err), todo.skipped)
        log.info("host %s: labels attached %s, detached %s", host, attach or "nothing", todo.detach or "nothing")
        return HostLabelChange(host, attach, todo.detach, True, "", todo.skipped)

