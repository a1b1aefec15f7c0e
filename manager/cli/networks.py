"""`virtfleet network …` and the host network commands (`host setup-networks`, `host networks`)."""
from __future__ import annotations

import click

from virtfleet.hostnet import netcompare
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc, hostnet_pb2

from .hosts import host_group
from .output import OUTPUT_OPTION, as_dict, print_fields, print_json, print_table


def _stub(ctx: click.Context) -> fleet_pb2_grpc.FleetServiceStub:
    return ctx.obj.fleet()


# -- parsing what admins type (pure) ------------------------------------------------------------


def parse_attach(text: str) -> fleet_pb2.HostAttachment:
    """`NET=NIC[:dhcp | :static=ADDR/PREFIX|NETMASK[,gateway=GW][,default-route]]`."""
    head, _, opts = text.partition(":")
    network, eq, nic = head.partition("=")
    if not eq or not network or not nic:
        raise click.BadParameter(f"{text!r}: expected NET=NIC[:options]", param_hint="--attach")
    att = fleet_pb2.HostAttachment(network=network, nic=nic)
    for opt in filter(None, (o.strip() for o in opts.split(","))):
        key, _, value = opt.partition("=")
        if key == "dhcp" and not value:
            att.ipv4.method = "dhcp"
        elif key == "static" and value:
            address, slash, prefix = value.partition("/")
            if not slash:
                raise click.BadParameter(f"{opt!r}: expected static=ADDRESS/PREFIX", param_hint="--attach")
            try:
                att.ipv4.prefixlen = netcompare.prefixlen(prefix)
            except ValueError as exc:
                raise click.BadParameter(f"{opt!r}: {exc}", param_hint="--attach") from None
            att.ipv4.method, att.ipv4.address = "static", address
        elif key == "gateway" and value:
            att.ipv4.gateway = value
        elif key in ("default-route", "default_route") and not value:
            att.default_route = True
        else:
            raise click.BadParameter(
                f"{opt!r}: options are dhcp, static=ADDR/PREFIX, gateway=GW, default-route", param_hint="--attach")
    return att


def parse_bond(text: str) -> hostnet_pb2.Bond:
    """`NAME=NIC1,NIC2[:mode=M,OPTION=VALUE,...]` — mode by number or kernel name."""
    head, _, opts = text.partition(":")
    name, eq, slaves = head.partition("=")
    if not eq or not name:
        raise click.BadParameter(f"{text!r}: expected NAME=NIC1,NIC2[:mode=M,option=value]", param_hint="--bond")
    bond = hostnet_pb2.Bond(name=name, slaves=[s for s in slaves.split(",") if s])
    for opt in filter(None, (o.strip() for o in opts.split(","))):
        key, eq, value = opt.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{opt!r}: expected OPTION=VALUE", param_hint="--bond")
        if key == "mode":
            bond.mode = value
        else:
            bond.options[key] = value
    return bond


def _ipv4_text(ipv4: hostnet_pb2.Ipv4Config) -> str:
    if ipv4.method == "static":
        gw = f" via {ipv4.gateway}" if ipv4.gateway else ""
        return f"{ipv4.address}/{ipv4.prefixlen}{gw}"
    return ipv4.method or "none"


# -- logical networks ---------------------------------------------------------------------------


@click.group("network")
def network_group() -> None:
    """Logical networks of the datacenter (ovirtmgmt exists from the start)."""


@network_group.command("create")
@click.argument("name")
@click.option("--vlan", type=int, default=0, help="VLAN id 1-4094 (default: untagged)")
@click.option("--mtu", type=int, default=0, help="MTU (default 1500)")
@click.option("--no-vm-network", is_flag=True, help="bridgeless: addresses go on the NIC itself, no VMs attach")
@click.option("--description", default="")
@click.option("--datacenter", default="", help="default: Default")
@OUTPUT_OPTION
@click.pass_context
def network_create(ctx, name, vlan, mtu, no_vm_network, description, datacenter, output):
    """Define logical network NAME (a VM network, bridged, unless --no-vm-network)."""
    net = _stub(ctx).CreateNetwork(fleet_pb2.CreateNetworkRequest(
        network=fleet_pb2.LogicalNetwork(name=name, vlan=vlan, mtu=mtu, description=description,
                                         datacenter=datacenter),
        no_vm_network=no_vm_network), timeout=30)
    if output == "json":
        print_json(as_dict(net))
    else:
        click.echo(f"created network {net.name} ({'VM network' if net.vm_network else 'bridgeless'}, "
                   f"mtu {net.mtu}{f', vlan {net.vlan}' if net.vlan else ''})")


@network_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def network_list(ctx, output):
    """All logical networks."""
    nets = _stub(ctx).ListNetworks(fleet_pb2.ListNetworksRequest(), timeout=30).networks
    if output == "json":
        print_json([as_dict(n) for n in nets])
        return
    print_table(["NAME", "DATACENTER", "VLAN", "MTU", "VM NETWORK", "MIGRATION", "DESCRIPTION"],
                [(n.name, n.datacenter, n.vlan or "-", n.mtu, "yes" if n.vm_network else "no",
                  ", ".join(c.cluster for c in n.clusters if c.migration) or "-", n.description)
                 for n in nets])


@network_group.command("show")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def network_show(ctx, name, output):
    """One logical network."""
    n = _stub(ctx).GetNetwork(fleet_pb2.GetNetworkRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(n))
        return
    print_fields([("name", n.name), ("datacenter", n.datacenter), ("vlan", n.vlan or "untagged"), ("mtu", n.mtu),
                  ("vm network", "yes (bridged)" if n.vm_network else "no (bridgeless)"),
                  ("description", n.description), ("clusters", _clusters_text(n)),
                  ("labels", ", ".join(n.labels) or "none")])


def _clusters_text(n: fleet_pb2.LogicalNetwork) -> str:
    return ", ".join(f"{c.cluster} ({'required' if c.required else 'optional'}{', migration' if c.migration else ''})"
                     for c in n.clusters) or "none"


@network_group.command("attach-cluster")
@click.argument("name")
@click.argument("cluster")
@click.option("--required/--optional", default=False, show_default=True,
              help="required: a host of the cluster that carries it must have it in sync, or it is non-operational")
@click.option("--migration", is_flag=True,
              help="the cluster's migration network: live migrations to its hosts go over it (one per cluster: "
                   "the role moves here from another network); without: migrations use the management network")
@OUTPUT_OPTION
@click.pass_context
def network_attach_cluster(ctx, name, cluster, required, migration, output):
    """Attach network NAME to CLUSTER (again: only whether it is required, and the migration network, change)."""
    n = _stub(ctx).AttachNetworkToCluster(fleet_pb2.AttachNetworkToClusterRequest(
        network=name, cluster=cluster, required=required, migration=migration), timeout=30)
    if output == "json":
        print_json(as_dict(n))
    else:
        role = ", the cluster's migration network" if migration else ""
        click.echo(f"network {n.name} is {'required' if required else 'optional'} in cluster {cluster}{role}; "
                   f"clusters: {_clusters_text(n)}")


@network_group.command("detach-cluster")
@click.argument("name")
@click.argument("cluster")
@OUTPUT_OPTION
@click.pass_context
def network_detach_cluster(ctx, name, cluster, output):
    """Detach network NAME from CLUSTER: no longer required there, nor placed there by labels."""
    n = _stub(ctx).DetachNetworkFromCluster(fleet_pb2.DetachNetworkFromClusterRequest(network=name, cluster=cluster),
                                            timeout=30)
    if output == "json":
        print_json(as_dict(n))
    else:
        click.echo(f"network {n.name} detached from cluster {cluster}; clusters: {_clusters_text(n)}")


# -- labels -------------------------------------------------------------------------------------


def _print_outcome(ctx: click.Context, what: str, outcome: fleet_pb2.LabelOutcome, output: str) -> None:
    """Each host's setupNetworks; a host that refused makes the command fail (the label stays recorded)."""
    if output == "json":
        print_json(as_dict(outcome))
    else:
        click.echo(what)
        for h in outcome.hosts:
            if not h.applied:
                click.echo(f"  {h.host}: REFUSED, left as it was: {h.error}")
            elif h.attached or h.detached:
                done = ([f"attached {', '.join(h.attached)}"] if h.attached else []) + \
                       ([f"detached {', '.join(h.detached)}"] if h.detached else [])
                click.echo(f"  {h.host}: {'; '.join(done)}")
            else:
                click.echo(f"  {h.host}: nothing to change")
            for s in h.skipped:
                click.echo(f"  {h.host}: skipped {s}")
    if any(not h.applied for h in outcome.hosts):
        ctx.exit(1)


@network_group.command("label")
@click.argument("name")
@click.argument("label")
@click.option("--remove", is_flag=True, help="take the label off (detaches what it put on hosts)")
@OUTPUT_OPTION
@click.pass_context
def network_label(ctx, name, label, remove, output):
    """Label network NAME: it lands on every host NIC carrying LABEL (`host nic-label`)."""
    stub = _stub(ctx)
    if remove:
        outcome = stub.UnlabelNetwork(fleet_pb2.UnlabelNetworkRequest(network=name, label=label), timeout=600)
    else:
        outcome = stub.LabelNetwork(fleet_pb2.LabelNetworkRequest(network=name, label=label), timeout=600)
    _print_outcome(ctx, f"network {name}: label {label} {'removed' if remove else 'set'}", outcome, output)


@host_group.command("nic-label")
@click.argument("host")
@click.argument("nic")
@click.argument("label")
@click.option("--remove", is_flag=True, help="take the label off (detaches what it put on the NIC)")
@OUTPUT_OPTION
@click.pass_context
def host_nic_label(ctx, host, nic, label, remove, output):
    """Label NIC (or bond) of HOST: every network carrying LABEL lands on it, in one setupNetworks."""
    stub = _stub(ctx)
    if remove:
        outcome = stub.UnlabelHostNic(fleet_pb2.UnlabelHostNicRequest(host=host, nic=nic, label=label), timeout=300)
    else:
        outcome = stub.LabelHostNic(fleet_pb2.LabelHostNicRequest(host=host, nic=nic, label=label), timeout=300)
    _print_outcome(ctx, f"{host} {nic}: label {label} {'removed' if remove else 'set'}", outcome, output)


@network_group.command("delete")
@click.argument("name")
@click.pass_context
def network_delete(ctx, name):
    """Remove a logical network that no host carries."""
    _stub(ctx).DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name=name), timeout=30)
    click.echo(f"deleted network {name}")


# -- host networks ------------------------------------------------------------------------------


def _print_view(view: fleet_pb2.HostNetworksView) -> None:
    rows = []
    for s in view.networks:
        status = "in sync" if s.in_sync else "OUT OF SYNC"
        rows.append((s.network, s.nic, _ipv4_text(s.desired.ipv4), "yes" if s.desired.default_route else "",
                     status))
        for d in s.differences:
            rows.append(("", "", "", "", f"  {d.field}: expected {d.expected}, found {d.found}"))
    print_table(["NETWORK", "NIC", "IPV4", "DEFAULT ROUTE", "STATUS"], rows, title=f"networks on {view.host}")
    if view.bonds:
        print_table(["BOND", "SLAVES", "MODE", "OPTIONS"],
                    [(b.name, ",".join(b.slaves), b.mode, ",".join(f"{k}={v}" for k, v in sorted(b.options.items())))
                     for b in view.bonds])


@host_group.command("setup-networks")
@click.argument("host")
@click.option("--attach", "attach", multiple=True, metavar="NET=NIC[:OPTS]",
              help="carry NET on NIC or bond; OPTS: dhcp | static=ADDR/PREFIX, gateway=GW, default-route")
@click.option("--detach", "detach", multiple=True, metavar="NET", help="remove NET from the host")
@click.option("--bond", "bonds", multiple=True, metavar="NAME=NIC1,NIC2[:mode=M,opt=v]",
              help="create or change a bond, e.g. bond0=eth1,eth2:mode=1,miimon=100")
@click.option("--remove-bond", "remove_bonds", multiple=True, metavar="NAME", help="remove a bond")
@click.option("--plan", is_flag=True, help="only show the kernel changes the agent would make; change nothing")
@click.option("--connectivity-timeout", type=click.IntRange(min=0), default=0, show_default=True,
              help="seconds the agent waits for the manager's confirmation before rolling back (0: no check)")
@OUTPUT_OPTION
@click.pass_context
def host_setup_networks(ctx, host, attach, detach, bonds, remove_bonds, plan, connectivity_timeout, output):
    """Change HOST's networks and bonds in one validated, transactional step."""
    request = fleet_pb2.SetupHostNetworksRequest(
        host=host, attach=[parse_attach(a) for a in attach], detach=list(detach),
        bonds=[parse_bond(b) for b in bonds], remove_bonds=list(remove_bonds), plan=plan,
        connectivity_timeout_s=connectivity_timeout)
    if not (request.attach or request.detach or request.bonds or request.remove_bonds):
        raise click.UsageError("nothing to do: give --attach, --detach, --bond or --remove-bond")
    reply = _stub(ctx).SetupHostNetworks(request, timeout=120 + connectivity_timeout)
    if output == "json":
        print_json(as_dict(reply))
        return
    if plan:
        click.echo(f"plan for {host} ({len(reply.steps)} kernel changes, nothing done):" if reply.steps
                   else f"{host}: nothing to change")
    else:
        click.echo(f"{host}: applied {len(reply.steps)} kernel changes")
    for step in reply.steps:
        click.echo(f"  {step}")
    if reply.applied:
        _print_view(reply.view)


@host_group.command("networks")
@click.argument("host")
@OUTPUT_OPTION
@click.pass_context
def host_networks(ctx, host, output):
    """The networks HOST should carry: in sync, or exactly what differs."""
    view = _stub(ctx).GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host=host), timeout=30)
    if output == "json":
        print_json(as_dict(view))
    else:
        _print_view(view)
