"""Named queries on logical networks: their clusters and labels, their desired host attachments and bonds."""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from virtfleet.errors import AlreadyExists, FailedPrecondition, NotFound


@dataclass(frozen=True)
class NetworkRecord:
    id: int
    name: str
    datacenter: str
    vlan: int | None
    mtu: int
    vm_network: bool
    description: str


@dataclass(frozen=True)
class AttachmentRecord:
    network: str
    nic: str
    ipv4_method: str
    ipv4_address: str | None
    ipv4_prefixlen: int | None
    ipv4_gateway: str | None
    default_route: bool


@dataclass(frozen=True)
class ClusterRecord:
    cluster: str
    required: bool
    migration: bool = False     # the cluster's migration network (one per cluster)


@dataclass(frozen=True)
class RequiredAttachment:
    """A required network of a host's cluster that the host is recorded to carry."""

    host: str
    network: NetworkRecord
    attachment: AttachmentRecord


@dataclass(frozen=True)
class LabelledHost:
    """One host's NIC labels and the labelled networks of its cluster: what labels put on it."""

    host: str
    nic_labels: dict[str, frozenset[str]]        # NIC → its labels
    network_labels: dict[str, frozenset[str]]    # network attached to the host's cluster → its labels


@dataclass(frozen=True)
class BondRecord:
    name: str
    slaves: list[str]
    mode: str
    options: dict[str, str] = field(default_factory=dict)


_SELECT_NETWORK = """
    SELECT n.id, n.name, d.name AS datacenter, n.vlan, n.mtu, n.vm_network, n.description
      FROM networks n JOIN datacenters d ON d.id = n.datacenter_id
"""


def insert_network(conn: psycopg.Connection, *, name: str, datacenter: str, vlan: int | None, mtu: int,
                   vm_network: bool, description: str) -> NetworkRecord:
    dc = conn.execute("SELECT id FROM datacenters WHERE name = %s", (datacenter,)).fetchone()
    if dc is None:
        raise NotFound(f"datacenter {datacenter!r} does not exist")
    try:
        with conn.transaction():
            net_id = conn.execute(
                """INSERT INTO networks (datacenter_id, name, vlan, mtu, vm_network, description)
                   VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
                (dc[0], name, vlan, mtu, vm_network, description),
            ).fetchone()[0]
            # Usable in every cluster of its datacenter, optional, as networks were before db/014.
            conn.execute("""INSERT INTO cluster_networks (cluster_id, network_id)
                            SELECT id, %s FROM clusters WHERE datacenter_id = %s""", (net_id, dc[0]))
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"network {name!r} already exists in datacenter {datacenter}") from None
    return get_network(conn, name, datacenter)


def list_networks(conn: psycopg.Connection, datacenter: str | None = None) -> list[NetworkRecord]:
    with conn.cursor(row_factory=class_row(NetworkRecord)) as cur:
        if datacenter:
            return cur.execute(_SELECT_NETWORK + " WHERE d.name = %s ORDER BY n.name", (datacenter,)).fetchall()
        return cur.execute(_SELECT_NETWORK + " ORDER BY d.name, n.name").fetchall()


def get_network(conn: psycopg.Connection, name: str, datacenter: str = "Default") -> NetworkRecord:
    with conn.cursor(row_factory=class_row(NetworkRecord)) as cur:
        row = cur.execute(_SELECT_NETWORK + " WHERE n.name = %s AND d.name = %s", (name, datacenter)).fetchone()
    if row is None:
        raise NotFound(f"network {name!r} does not exist in datacenter {datacenter}")
    return row


def delete_network(conn: psycopg.Connection, name: str, datacenter: str = "Default") -> None:
    """Refused while hosts, VMs, templates or snapshots use the network, naming them.

    Templates and snapshots name the network (no foreign key: they are portable), so
    they are checked here, with the network's row locked: a template created meanwhile
    locks the networks it names (vnics.network_refs(lock=True)) and so waits or is seen.
    """
    net = get_network(conn, name, datacenter)
    with conn.transaction():
        dc_id = conn.execute("SELECT datacenter_id FROM networks WHERE id = %s FOR UPDATE", (net.id,)).fetchone()[0]
        templates = [r[0] for r in conn.execute(
            """SELECT DISTINCT t.name FROM template_nics n JOIN templates t ON t.id = n.template_id
                WHERE n.network = %s AND t.datacenter_id = %s ORDER BY t.name""", (net.name, dc_id))]
        if templates:
            raise FailedPrecondition(
                f"network {name!r} is used by vNICs of {len(templates)} template(s): {_names(templates)}; "
                "delete those templates first")
        snapshots = [r[0] for r in conn.execute(
            """SELECT DISTINCT s.name FROM snapshot_nics n JOIN snapshots s ON s.id = n.snapshot_id
                 JOIN vms v ON v.id = s.vm_id JOIN clusters c ON c.id = v.cluster_id
                WHERE n.network = %s AND c.datacenter_id = %s ORDER BY s.name""",
            (net.name, dc_id))]
        if snapshots:
            raise FailedPrecondition(
                f"network {name!r} is used by vNICs of {len(snapshots)} snapshot(s): {_names(snapshots)}; "
                "delete those snapshots first")
        hosts = [r[0] for r in conn.execute(
            """SELECT h.name FROM host_network_attachments a JOIN hosts h ON h.id = a.host_id
                WHERE a.network_id = %s ORDER BY h.name""", (net.id,))]
        if hosts:
            raise FailedPrecondition(
                f"network {name!r} is attached to {len(hosts)} host(s): {', '.join(hosts)}; detach it first")
        vms = [r[0] for r in conn.execute(
            """SELECT DISTINCT v.name FROM vnics n JOIN vms v ON v.id = n.vm_id
                WHERE n.network_id = %s ORDER BY v.name""", (net.id,))]
        if vms:
            raise FailedPrecondition(
                f"network {name!r} is used by vNICs of {len(vms)} VM(s): {', '.join(vms[:10])}"
                f"{' …' if len(vms) > 10 else ''}; remove those vNICs first")
        conn.execute("DELETE FROM networks WHERE id = %s", (net.id,))


def _names(names: list[str]) -> str:
    return ", ".join(names[:10]) + (" …" if len(names) > 10 else "")


def lock_networks(conn: psycopg.Connection, ids: list[int]) -> set[str]:
    """The names of those networks that still exist, kept from deletion to the end of the transaction."""
    if not ids:
        return set()
    return {r[0] for r in conn.execute("SELECT name FROM networks WHERE id = ANY(%s) FOR SHARE", (ids,))}


def attachments(conn: psycopg.Connection, host_id: int) -> list[AttachmentRecord]:
    with conn.cursor(row_factory=class_row(AttachmentRecord)) as cur:
        return cur.execute(
            """SELECT n.name AS network, a.nic, a.ipv4_method, host(a.ipv4_address) AS ipv4_address,
                      a.ipv4_prefixlen, host(a.ipv4_gateway) AS ipv4_gateway, a.default_route
                 FROM host_network_attachments a JOIN networks n ON n.id = a.network_id
                WHERE a.host_id = %s ORDER BY n.name""", (host_id,)).fetchall()


def bonds(conn: psycopg.Connection, host_id: int) -> list[BondRecord]:
    rows = conn.execute("SELECT name, slaves, mode, options FROM host_bonds WHERE host_id = %s ORDER BY name",
                        (host_id,)).fetchall()
    return [BondRecord(*r) for r in rows]


def record_host_change(conn: psycopg.Connection, host_id: int, *, upsert: list[tuple[NetworkRecord, AttachmentRecord]],
                       detach: list[NetworkRecord], bonds_upsert: list[BondRecord], bonds_remove: list[str]) -> None:
    """All of one setupNetworks call's desired state, or none of it."""
    with conn.transaction():
        for net in detach:
            conn.execute("DELETE FROM host_network_attachments WHERE host_id = %s AND network_id = %s",
                         (host_id, net.id))
        if any(a.default_route for _, a in upsert):
            conn.execute("UPDATE host_network_attachments SET default_route = false WHERE host_id = %s", (host_id,))
        for net, a in upsert:
            conn.execute(
                """INSERT INTO host_network_attachments
                       (host_id, network_id, nic, ipv4_method, ipv4_address, ipv4_prefixlen, ipv4_gateway,
                        default_route)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (host_id, network_id) DO UPDATE SET
                       nic = EXCLUDED.nic, ipv4_method = EXCLUDED.ipv4_method,
                       ipv4_address = EXCLUDED.ipv4_address, ipv4_prefixlen = EXCLUDED.ipv4_prefixlen,
                       ipv4_gateway = EXCLUDED.ipv4_gateway, default_route = EXCLUDED.default_route""",
                (host_id, net.id, a.nic, a.ipv4_method, a.ipv4_address, a.ipv4_prefixlen, a.ipv4_gateway,
                 a.default_route),
            )
        for name in bonds_remove:
            conn.execute("DELETE FROM host_bonds WHERE host_id = %s AND name = %s", (host_id, name))
        for b in bonds_upsert:
            conn.execute(
                """INSERT INTO host_bonds (host_id, name, slaves, mode, options) VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (host_id, name) DO UPDATE SET
                       slaves = EXCLUDED.slaves, mode = EXCLUDED.mode, options = EXCLUDED.options""",
                (host_id, b.name, b.slaves, b.mode, Jsonb(b.options)),
            )


# -- clusters --------------------------------------------------------------------------------------


def network_clusters(conn: psycopg.Connection, network_id: int) -> list[ClusterRecord]:
    with conn.cursor(row_factory=class_row(ClusterRecord)) as cur:
        return cur.execute(
            """SELECT c.name AS cluster, cn.required, cn.migration
                 FROM cluster_networks cn JOIN clusters c ON c.id = cn.cluster_id
                WHERE cn.network_id = %s ORDER BY c.name""", (network_id,)).fetchall()


def all_network_clusters(conn: psycopg.Connection) -> dict[int, list[ClusterRecord]]:
    """`network_clusters` of every network in one statement (the read model's load)."""
    found: dict[int, list[ClusterRecord]] = {}
    for net_id, cluster, required, migration in conn.execute(
            """SELECT cn.network_id, c.name, cn.required, cn.migration
                 FROM cluster_networks cn JOIN clusters c ON c.id = cn.cluster_id
                ORDER BY cn.network_id, c.name"""):
        found.setdefault(net_id, []).append(ClusterRecord(cluster, required, migration))
    return found


def _cluster_of(conn: psycopg.Connection, net: NetworkRecord, cluster: str) -> int:
    row = conn.execute(
        """SELECT c.id FROM clusters c JOIN datacenters d ON d.id = c.datacenter_id
            WHERE c.name = %s AND d.name = %s""", (cluster, net.datacenter)).fetchone()
    if row is None:
        raise NotFound(f"cluster {cluster!r} does not exist in datacenter {net.datacenter} (cluster)")
    return row[0]


def attach_to_cluster(conn: psycopg.Connection, net: NetworkRecord, cluster: str, required: bool,
                      migration: bool = False) -> None:
    """Attach, or set `required` and `migration` of an attachment; the migration role moves to this network
    from the cluster's other one in the same transaction (the database keeps one per cluster)."""
    cid = _cluster_of(conn, net, cluster)
    with conn.transaction():
        if migration:
            conn.execute("""UPDATE cluster_networks SET migration = false
                             WHERE cluster_id = %s AND migration AND network_id <> %s""", (cid, net.id))
        conn.execute("""INSERT INTO cluster_networks (cluster_id, network_id, required, migration)
                        VALUES (%s, %s, %s, %s)
                        ON CONFLICT (cluster_id, network_id) DO UPDATE
                           SET required = EXCLUDED.required, migration = EXCLUDED.migration""",
                     (cid, net.id, required, migration))


def migration_attachment(conn: psycopg.Connection, cluster: str,
                         host: str) -> tuple[NetworkRecord, AttachmentRecord] | None:
    """The cluster's migration network as `host` (of that cluster) is recorded to carry it; None when the cluster
    has none, or the host does not carry it."""
    row = conn.execute(
        """SELECT n.id, n.name, d.name, n.vlan, n.mtu, n.vm_network, n.description,
                  a.nic, a.ipv4_method, host(a.ipv4_address), a.ipv4_prefixlen, host(a.ipv4_gateway), a.default_route
             FROM hosts h JOIN clusters c ON c.id = h.cluster_id
             JOIN cluster_networks cn ON cn.cluster_id = c.id AND cn.migration
             JOIN networks n ON n.id = cn.network_id JOIN datacenters d ON d.id = n.datacenter_id
             JOIN host_network_attachments a ON a.host_id = h.id AND a.network_id = n.id
            WHERE h.name = %s AND c.name = %s""", (host, cluster)).fetchone()
    if row is None:
        return None
    return NetworkRecord(*row[:7]), AttachmentRecord(row[1], *row[7:])


def migration_network(conn: psycopg.Connection, cluster: str) -> str | None:
    """The name of the cluster's migration network; None: migrations use the management network."""
    row = conn.execute(
        """SELECT n.name FROM cluster_networks cn JOIN clusters c ON c.id = cn.cluster_id
             JOIN networks n ON n.id = cn.network_id WHERE c.name = %s AND cn.migration""", (cluster,)).fetchone()
    return row[0] if row else None


def detach_from_cluster(conn: psycopg.Connection, net: NetworkRecord, cluster: str) -> None:
    cid = _cluster_of(conn, net, cluster)
    if conn.execute("DELETE FROM cluster_networks WHERE cluster_id = %s AND network_id = %s",
                    (cid, net.id)).rowcount == 0:
        raise NotFound(f"network {net.name!r} is not attached to cluster {cluster}")


def cluster_network_names(conn: psycopg.Connection, cluster_id: int) -> frozenset[str]:
    """The networks attached to a cluster: the only ones its hosts carry and its VMs' vNICs use."""
    return frozenset(r[0] for r in conn.execute(
        """SELECT n.name FROM cluster_networks cn JOIN networks n ON n.id = cn.network_id
            WHERE cn.cluster_id = %s""", (cluster_id,)))


def host_cluster_network_names(conn: psycopg.Connection, host_id: int) -> frozenset[str]:
    """The networks attached to the host's cluster."""
    row = conn.execute("SELECT cluster_id FROM hosts WHERE id = %s", (host_id,)).fetchone()
    return cluster_network_names(conn, row[0]) if row else frozenset()


def required_attachments(conn: psycopg.Connection) -> list[RequiredAttachment]:
    """Every host's recorded attachments of networks its cluster requires."""
    rows = conn.execute(
        """SELECT h.name, n.id, n.name, d.name, n.vlan, n.mtu, n.vm_network, n.description,
                  a.nic, a.ipv4_method, host(a.ipv4_address), a.ipv4_prefixlen, host(a.ipv4_gateway), a.default_route
             FROM hosts h
             JOIN cluster_networks cn ON cn.cluster_id = h.cluster_id AND cn.required
             JOIN host_network_attachments a ON a.host_id = h.id AND a.network_id = cn.network_id
             JOIN networks n ON n.id = cn.network_id JOIN datacenters d ON d.id = n.datacenter_id
            ORDER BY h.name, n.name""").fetchall()
    return [RequiredAttachment(r[0], NetworkRecord(*r[1:8]), AttachmentRecord(r[2], *r[8:])) for r in rows]


# -- labels --------------------------------------------------------------------------------------


def network_labels(conn: psycopg.Connection, network_id: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT label FROM network_labels WHERE network_id = %s ORDER BY label",
                                       (network_id,))]


def all_network_labels(conn: psycopg.Connection) -> dict[int, list[str]]:
    """`network_labels` of every network in one statement (the read model's load)."""
    found: dict[int, list[str]] = {}
    for net_id, label in conn.execute("SELECT network_id, label FROM network_labels ORDER BY network_id, label"):
        found.setdefault(net_id, []).append(label)
    return found


def add_network_label(conn: psycopg.Connection, network_id: int, label: str) -> None:
    conn.execute("INSERT INTO network_labels (network_id, label) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (network_id, label))


def remove_network_label(conn: psycopg.Connection, net: NetworkRecord, label: str) -> None:
    if conn.execute("DELETE FROM network_labels WHERE network_id = %s AND label = %s",
                    (net.id, label)).rowcount == 0:
        raise NotFound(f"network {net.name!r} has no label {label!r} (label)")


def nic_labels(conn: psycopg.Connection, host_id: int) -> list[tuple[str, str]]:
    """(NIC, label) pairs of one host."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT nic, label FROM host_nic_labels WHERE host_id = %s ORDER BY nic, label", (host_id,))]


def add_nic_label(conn: psycopg.Connection, host_id: int, host: str, nic: str, label: str) -> None:
    """A label is on one NIC of a host: the database's key (host, label) says so."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO host_nic_labels (host_id, nic, label) VALUES (%s, %s, %s)
               ON CONFLICT (host_id, label) DO UPDATE SET nic = host_nic_labels.nic RETURNING nic""",
            (host_id, nic, label)).fetchone()
    if row[0] != nic:
        raise AlreadyExists(f"label {label!r} is on NIC {row[0]} of host {host} already; a label marks one NIC "
                            f"per host (remove it there first)")


def put_nic_label(conn: psycopg.Connection, host_id: int, nic: str, label: str) -> None:
    """The label on `nic`, moved there if it marked another NIC of the host (`host add` states it anew)."""
    conn.execute("""INSERT INTO host_nic_labels (host_id, nic, label) VALUES (%s, %s, %s)
                    ON CONFLICT (host_id, label) DO UPDATE SET nic = EXCLUDED.nic""", (host_id, nic, label))


def remove_nic_label(conn: psycopg.Connection, host_id: int, host: str, nic: str, label: str) -> None:
    if conn.execute("DELETE FROM host_nic_labels WHERE host_id = %s AND nic = %s AND label = %s",
                    (host_id, nic, label)).rowcount == 0:
        raise NotFound(f"NIC {nic} of host {host} has no label {label!r} (label)")


def labelled_hosts(conn: psycopg.Connection, *, label: str | None = None, host: str | None = None) -> list[LabelledHost]:
    """The hosts with a NIC carrying `label`, or the one `host` (labelled or not), each with its NIC
    labels and its cluster's labelled networks."""
    hosts = conn.execute(
        """SELECT h.id, h.name, h.cluster_id FROM hosts h
            WHERE h.name = %(host)s
               OR EXISTS (SELECT 1 FROM host_nic_labels l WHERE l.host_id = h.id AND l.label = %(label)s)
            ORDER BY h.name""", {"label": label, "host": host}).fetchall()
    found = []
    for host_id, name, cluster_id in hosts:
        nics: dict[str, set[str]] = {}
        for nic, lab in nic_labels(conn, host_id):
            nics.setdefault(nic, set()).add(lab)
        nets: dict[str, set[str]] = {}
        for net, lab in conn.execute(
                """SELECT n.name, l.label FROM network_labels l JOIN networks n ON n.id = l.network_id
                     JOIN cluster_networks cn ON cn.network_id = n.id WHERE cn.cluster_id = %s""", (cluster_id,)):
            nets.setdefault(net, set()).add(lab)
        found.append(LabelledHost(name, {k: frozenset(v) for k, v in nics.items()},
                                  {k: frozenset(v) for k, v in nets.items()}))
    return found
