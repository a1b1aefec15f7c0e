"""Where migration traffic goes: the destination's address on its cluster's migration network.

oVirt's migration role: a cluster may name one network for migrations, so a live
migration's memory stream does not crowd the management network. The address is the
one the destination's last report shows on the network's top device (its bridge for
a VM network, else its NIC or VLAN device) — what the host really has, not what it was
asked to have. Without a migration network, or while the host does not carry it or
has no IPv4 address on it, traffic goes to the host's management address (the
address it was enrolled with), which always answers.
"""
from __future__ import annotations

import ipaddress
import logging
from contextlib import AbstractContextManager, nullcontext

import psycopg
from google.protobuf.json_format import ParseDict
from psycopg_pool import ConnectionPool

from virtfleet.hostnet.netcompare import layout
from virtfleet.v1 import netstate_pb2

from ..store import hosts as host_store
from ..store import networks as net_store
from .networks import agent_attachment

log = logging.getLogger(__name__)


def migration_address(conn_or_pool: psycopg.Connection | ConnectionPool, cluster: str, host: str) -> str:
    """The IPv4 address migrations to `host` (of `cluster`) are sent to; NotFound for an unknown host."""
    with _connection(conn_or_pool) as conn:
        record = host_store.get_host(conn, host)
        found = net_store.migration_attachment(conn, cluster, host)
        report = host_store.get_report(conn, host) if found is not None else None
    if found is None or report is None:
        return record.address
    state = ParseDict(report.state, netstate_pb2.NetworkState(), ignore_unknown_fields=True)
    address = address_on(state, layout(agent_attachment(*found)).top)
    if address is None:
        log.info("host %s has no IPv4 address on migration network %s; migrating over its management address",
                 host, found[0].name)
        return record.address
    return address


def address_on(state: netstate_pb2.NetworkState, device: str) -> str | None:
    """The first global IPv4 address the report shows on `device`."""
    for link in state.links:
        if link.name != device:
            continue
        for a in link.addresses:
            if a.family == "inet" and a.scope in ("global", "") and _is_ipv4(a.address):
                return a.address
    return None


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _connection(conn_or_pool: psycopg.Connection | ConnectionPool) -> AbstractContextManager[psycopg.Connection]:
    if isinstance(conn_or_pool, psycopg.Connection):
        return nullcontext(conn_or_pool)
    return conn_or_pool.connection()
