"""Every rule a setupNetworks request must pass before the kernel is touched.

Pure: the request, the running configuration, the host's state and this
kernel's capabilities in; the configuration after the change out, or an
error naming the request field (`networks[2].vlan`, `bonds[0].mode`) so the
admin knows what to fix. Rules are checked in the order an admin would fix
them: the request's own values, then how networks and bonds fit together,
then whether this kernel can build it at all (FAILED_PRECONDITION).
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.net.hostnet import model
from agent.net.hostnet.canonicalize import merge
from agent.net.report.capabilities import nics as host_nics
from virtfleet import rules
from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.hostnet import netcompare
from virtfleet.v1 import hostnet_pb2, netstate_pb2

VM_BOND_MODES = (1, 2, 4)  # seed 003: the modes that work under a bridge VMs use
SEED_003_REASON = (
    "bonding modes 0, 3, 5 and 6 are likely to make connections fail on a bridge that VMs use; "
    "use mode 1 (active-backup), 2 (balance-xor) or 4 (802.3ad)"
)
ARP_REASON = "ARP monitoring does not work correctly under a bridge that VMs use; use MII monitoring (miimon)"
# Capability (as agent.net.report.capabilities names it) → the kernel module an admin would load.
MODULES = {"bond": "bonding", "vlan": "8021q"}


def validate(
    request: hostnet_pb2.SetupNetworksRequest,
    running: hostnet_pb2.HostNetworkConfig,
    state: netstate_pb2.NetworkState,
    features: Iterable[str],
) -> hostnet_pb2.HostNetworkConfig:
    """The configuration after `request`, or InvalidArgument / FailedPrecondition."""
    fields = _Fields(request)
    _check_request(request, running)
    config = merge(running, request)
    _check_bonds(config, fields, state)
    _check_networks(config, fields, state, running)
    _check_capabilities(request, config, fields, set(features))
    return config


class _Fields:
    """Where each network or bond sits in the request, so merged-config errors name a request field."""

    def __init__(self, request: hostnet_pb2.SetupNetworksRequest) -> None:
        self._networks = {n.network: i for i, n in enumerate(request.networks)}
        self._bonds = {b.name: i for i, b in enumerate(request.bonds)}

    def network(self, name: str, attr: str) -> str:
        i = self._networks.get(name)
        return f"networks[{i}].{attr}" if i is not None else f"network {name} (running).{attr}"

    def bond(self, name: str, attr: str) -> str:
        i = self._bonds.get(name)
        return f"bonds[{i}].{attr}" if i is not None else f"bond {name} (running).{attr}"


def _check_sizes(request: hostnet_pb2.SetupNetworksRequest) -> None:
    """The request's lists and its wait, by the limits the manager checks them with (virtfleet.rules)."""
    for field in ("networks", "remove_networks", "bonds", "remove_bonds"):
        rules.count_within(len(getattr(request, field)), rules.MAX_ITEMS_PER_REQUEST, field, "items in one request")
    for i, bond in enumerate(request.bonds):
        rules.count_within(len(bond.slaves), rules.MAX_BOND_SLAVES, f"bonds[{i}].slaves", "slaves in one bond")
    rules.timeout_s(request.connectivity_timeout_s, "connectivity_timeout_s")


def _check_request(request: hostnet_pb2.SetupNetworksRequest, running: hostnet_pb2.HostNetworkConfig) -> None:
    _check_sizes(request)
    seen: set[str] = set()
    for i, att in enumerate(request.networks):
        rules.device_name(att.network, f"networks[{i}].network", "network")
        if att.network in seen:
            raise InvalidArgument(f"networks[{i}].network", f"network {att.network!r} appears twice in the request")
        seen.add(att.network)
        rules.device_name(att.nic, f"networks[{i}].nic", "NIC or bond")
        _check_attachment(f"networks[{i}]", att)
    attached = {n.network for n in running.networks}
    for i, name in enumerate(request.remove_networks):
        if name in seen:
            raise InvalidArgument(f"remove_networks[{i}]", f"network {name!r} is both changed and removed")
        if name not in attached:
            raise InvalidArgument(f"remove_networks[{i}]", f"network {name!r} is not attached to this host")
    bond_names: set[str] = set()
    for i, bond in enumerate(request.bonds):
        rules.device_name(bond.name, f"bonds[{i}].name", "bond")
        if bond.name in bond_names:
            raise InvalidArgument(f"bonds[{i}].name", f"bond {bond.name!r} appears twice in the request")
        bond_names.add(bond.name)
        for j, slave in enumerate(bond.slaves):
            rules.device_name(slave, f"bonds[{i}].slaves[{j}]", "slave NIC")
        try:
            netcompare.bond_mode(bond.mode or "0")
        except ValueError as error:
            raise InvalidArgument(f"bonds[{i}].mode", f"bond {bond.name}: {error}") from None
        for key, value in bond.options.items():
            if key.strip().lower() == "miimon" and not value.strip().isdigit():
                raise InvalidArgument(f"bonds[{i}].options", f"bond {bond.name}: miimon must be milliseconds, got {value!r}")
    running_bonds = {b.name for b in running.bonds}
    for i, name in enumerate(request.remove_bonds):
        if name in bond_names:
            raise InvalidArgument(f"remove_bonds[{i}]", f"bond {name!r} is both changed and removed")
        if name not in running_bonds:
            raise InvalidArgument(f"remove_bonds[{i}]", f"bond {name!r} is not configured on this host")


def _check_attachment(field: str, att: hostnet_pb2.NetworkAttachment) -> None:
    """The values of one network, by the rules the manager checks them with (virtfleet.rules)."""
    if att.vlan:
        rules.vlan_id(att.vlan, f"{field}.vlan")
    rules.device_name(netcompare.layout(att).device, f"{field}.vlan", "VLAN device")
    if att.mtu:
        rules.mtu(att.mtu, f"{field}.mtu")
    ipv4 = att.ipv4
    values = rules.ipv4_config(ipv4.method, ipv4.address, ipv4.prefixlen, ipv4.gateway, f"{field}.ipv4")
    rules.default_route(att.default_route, values, f"{field}.default_route")


def _check_bonds(config: hostnet_pb2.HostNetworkConfig, fields: _Fields, state: netstate_pb2.NetworkState) -> None:
    available = set(host_nics(state))
    bonds = {b.name for b in config.bonds}
    owner: dict[str, str] = {}
    carriers = {att.nic for att in config.networks}
    for bond in config.bonds:
        if bond.name in available:
            raise InvalidArgument(fields.bond(bond.name, "name"), f"bond {bond.name!r} is the name of a NIC")
        if len(set(bond.slaves)) < 2:
            raise InvalidArgument(fields.bond(bond.name, "slaves"), f"bond {bond.name} needs at least 2 slave NICs")
        for slave in bond.slaves:
            if slave in bonds:
                raise InvalidArgument(fields.bond(bond.name, "slaves"), f"bond {bond.name}: {slave} is a bond, not a NIC")
            if slave not in available:
                raise InvalidArgument(fields.bond(bond.name, "slaves"), f"bond {bond.name}: no NIC named {slave!r} on this host")
            if slave in owner and owner[slave] != bond.name:
                raise InvalidArgument(fields.bond(bond.name, "slaves"),
                                      f"NIC {slave} is already a slave of bond {owner[slave]}; a NIC is a slave of one bond at most")
            owner[slave] = bond.name
            if slave in carriers:
                network = next(att.network for att in config.networks if att.nic == slave)
                raise InvalidArgument(fields.network(network, "nic"),
                                      f"network {network}: NIC {slave} is a slave of bond {bond.name} and cannot carry a network itself")
    vm_bonds = {att.nic for att in config.networks if att.bridged and att.nic in bonds}
    for bond in config.bonds:
        if bond.name not in vm_bonds:
            continue
        if netcompare.bond_mode(bond.mode or "0") not in VM_BOND_MODES:
            raise InvalidArgument(fields.bond(bond.name, "mode"), f"bond {bond.name} carries a VM network: {SEED_003_REASON}")
        options = {k.strip().lower(): v.strip() for k, v in bond.options.items()}
        arp = [k for k in model.ARP_OPTIONS if options.get(k, "0") not in ("", "0")]
        if arp:
            raise InvalidArgument(fields.bond(bond.name, "options"), f"bond {bond.name} carries a VM network: {ARP_REASON} (got {arp[0]})")
        if options.get("miimon", model.DEFAULT_MIIMON) == "0":
            raise InvalidArgument(fields.bond(bond.name, "options"), f"bond {bond.name} carries a VM network: {ARP_REASON} (miimon is 0)")


def _check_networks(config: hostnet_pb2.HostNetworkConfig, fields: _Fields, state: netstate_pb2.NetworkState,
                    running: hostnet_pb2.HostNetworkConfig) -> None:
    available = set(host_nics(state))
    bonds = {b.name for b in config.bonds}
    links = {link.name: link for link in state.links}
    ours = set(model.devices(running).bridges) | {b.name for b in running.bonds}
    untagged: dict[str, str] = {}
    tagged: dict[tuple[str, int], str] = {}
    with_default: list[str] = []
    for att in config.networks:
        if att.nic not in available and att.nic not in bonds:
            raise InvalidArgument(fields.network(att.network, "nic"), f"network {att.network}: no NIC or bond named {att.nic!r} on this host")
        link = links.get(att.nic)
        if link is not None and link.master and link.master not in ours and link.master != att.network:
            raise FailedPrecondition(f"network {att.network}: {att.nic} is already a port of {link.master}")
        if att.bridged and att.network in available | bonds:
            raise InvalidArgument(fields.network(att.network, "network"), f"network {att.network!r} would name its bridge after a NIC or bond")
        existing = links.get(att.network)
        if att.bridged and existing is not None and existing.kind != "bridge":
            raise FailedPrecondition(f"network {att.network}: {att.network} exists and is a {existing.kind or existing.link_type} device, not a bridge")
        if att.vlan:
            other = tagged.setdefault((att.nic, att.vlan), att.network)
            if other != att.network:
                raise InvalidArgument(fields.network(att.network, "vlan"), f"network {att.network}: VLAN {att.vlan} on {att.nic} already carries network {other}")
        else:
            other = untagged.setdefault(att.nic, att.network)
            if other != att.network:
                raise InvalidArgument(fields.network(att.network, "nic"),
                                      f"network {att.network}: {att.nic} already carries untagged network {other}; one untagged network per NIC or bond")
        if att.default_route:
            with_default.append(att.network)
    if len(with_default) > 1:
        raise InvalidArgument(fields.network(with_default[1], "default_route"),
                              f"networks {', '.join(with_default)} all ask for the default route; one may have it")
    untagged_mtu = {att.nic: netcompare.mtu(att.mtu) for att in config.networks if not att.vlan}
    for att in config.networks:
        device_mtu = untagged_mtu.get(att.nic)
        if att.vlan and device_mtu is not None and netcompare.mtu(att.mtu) > device_mtu:
            raise InvalidArgument(fields.network(att.network, "mtu"),
                                  f"network {att.network}: MTU {netcompare.mtu(att.mtu)} of VLAN {att.vlan} exceeds MTU {device_mtu} "
                                  f"of {att.nic} (set by untagged network {untagged[att.nic]})")


def _check_capabilities(request: hostnet_pb2.SetupNetworksRequest, config: hostnet_pb2.HostNetworkConfig,
                        fields: _Fields, features: set[str]) -> None:
    if "bond" not in features:
        for bond in request.bonds:
            raise FailedPrecondition(f"{fields.bond(bond.name, 'name')}: bond {bond.name} needs the kernel's bonding support "
                                     f"(capability 'bond', module {MODULES['bond']}), which this host lacks")
    if "vlan" not in features:
        for att in request.networks:
            if att.vlan:
                raise FailedPrecondition(f"{fields.network(att.network, 'vlan')}: VLAN {att.vlan} of network {att.network} needs "
                                         f"the kernel's 802.1Q support (capability 'vlan', module {MODULES['vlan']}), which this host lacks")
    if "bridge" not in features and any(att.bridged for att in request.networks):
        raise FailedPrecondition("bridged (VM) networks need the kernel's bridge support (capability 'bridge'), which this host lacks")
