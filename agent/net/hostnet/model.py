"""From a host network configuration to the devices the kernel must hold.

A configuration speaks of networks and bonds; the kernel of bridges, VLAN
devices, bonds, MTUs, addresses and routes. `devices()` translates one into
the other with `netcompare.layout` — the same layout the manager compares
against — so what the agent builds is exactly what "in sync" means. The plan
is then a diff of two `Devices` against the kernel's current state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from virtfleet.hostnet import netcompare
from virtfleet.v1 import hostnet_pb2

DEFAULT_MIIMON = "100"
# Options that turn on ARP link monitoring instead of MII (seed 003 forbids it under VM bridges).
ARP_OPTIONS = ("arp_interval", "arp_ip_target")


@dataclass(frozen=True)
class BondSpec:
    name: str
    slaves: tuple[str, ...]
    mode: int
    options: str  # canonical "key=value,..." sorted by key, as AddBond takes it


@dataclass(frozen=True)
class VlanSpec:
    name: str
    parent: str
    vlan_id: int
    mtu: int


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    port: str
    mtu: int
    # The bridge takes over its port's whole identity, as a management network does: its MAC (even
    # on a bridge that exists already) with STP off, and every IPv4 address and route the port has,
    # each with its own attributes (labels, lifetimes, protocols) — not just the configured address.
    takeover: bool = False


@dataclass(frozen=True)
class Devices:
    """Everything one configuration puts on the kernel, keyed by device name."""

    bonds: dict[str, BondSpec] = field(default_factory=dict)
    vlans: dict[str, VlanSpec] = field(default_factory=dict)
    bridges: dict[str, BridgeSpec] = field(default_factory=dict)
    base_mtu: dict[str, int] = field(default_factory=dict)  # NIC or bond carrying networks → its MTU
    addresses: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict)  # top device → IPv4/prefix
    default_route: tuple[str, str] | None = None  # (gateway, device)
    nics: frozenset[str] = frozenset()  # NICs this configuration uses: carriers and bond slaves


def bond_options(bond: hostnet_pb2.Bond) -> str:
    """Canonical options: MII monitoring at 100 ms unless the admin chose a monitor."""
    options = {k.strip().lower(): v.strip() for k, v in bond.options.items()}
    if not any(k in options for k in ("miimon", *ARP_OPTIONS)):
        options["miimon"] = DEFAULT_MIIMON
    return ",".join(f"{k}={options[k]}" for k in sorted(options))


def devices(config: hostnet_pb2.HostNetworkConfig, takeover: Iterable[str] = ()) -> Devices:
    """Devices for a configuration that passed validation; bridges named in `takeover` take over their port."""
    takeover = frozenset(takeover)
    bonds = {
        b.name: BondSpec(b.name, tuple(sorted(b.slaves)), netcompare.bond_mode(b.mode or "0"), bond_options(b))
        for b in config.bonds
    }
    vlans: dict[str, VlanSpec] = {}
    bridges: dict[str, BridgeSpec] = {}
    addresses: dict[str, set[tuple[str, int]]] = {}
    carried: dict[str, list[tuple[int, int]]] = {}  # base → [(vlan, mtu)]
    default_route = None
    for att in config.networks:
        lay = netcompare.layout(att)
        mtu = netcompare.mtu(att.mtu)
        carried.setdefault(lay.nic, []).append((lay.vlan, mtu))
        if lay.vlan:
            vlans[lay.device] = VlanSpec(lay.device, lay.nic, lay.vlan, mtu)
        if lay.bridge:
            bridges[lay.bridge] = BridgeSpec(lay.bridge, lay.device, mtu, takeover=lay.bridge in takeover)
        if (att.ipv4.method or "none").lower() == "static":
            iface = netcompare.ipv4_interface(att.ipv4.address, att.ipv4.prefixlen)
            addresses.setdefault(lay.top, set()).add((str(iface.ip), iface.network.prefixlen))
        if att.default_route and att.ipv4.gateway:
            default_route = (att.ipv4.gateway.strip(), lay.top)
    base_mtu = {base: base_device_mtu(nets) for base, nets in carried.items()}
    nics = {base for base in carried if base not in bonds} | {s for b in bonds.values() for s in b.slaves}
    return Devices(
        bonds=bonds, vlans=vlans, bridges=bridges, base_mtu=base_mtu,
        addresses={top: frozenset(a) for top, a in addresses.items()},
        default_route=default_route, nics=frozenset(nics),
    )


def base_device_mtu(networks: Iterable[tuple[int, int]]) -> int:
    """The untagged network decides a NIC's MTU; without one, the largest of its VLANs needs."""
    networks = list(networks)
    untagged = [mtu for vlan, mtu in networks if not vlan]
    return untagged[0] if untagged else max(mtu for _, mtu in networks)
