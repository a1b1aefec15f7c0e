"""`virtfleet profile …`: vNIC profiles (QoS, network filter, port mirroring, isolation, MTU to the guest)."""
from __future__ import annotations

import click

from virtfleet.v1 import profiles_pb2, profiles_pb2_grpc, vm_pb2

from .output import OUTPUT_OPTION, as_dict, print_fields, print_json, print_table

QOS_HELP = ("in=AVG[:PEAK[:BURST]],out=AVG[:PEAK[:BURST]]: average and peak in kbytes/s, burst in kbytes "
            "(libvirt's units); `none` for no QoS")
FILTER_HELP = "a libvirt network filter (clean-traffic, no-mac-spoofing, …) or none"


def _stub(ctx: click.Context) -> profiles_pb2_grpc.ProfileServiceStub:
    return profiles_pb2_grpc.ProfileServiceStub(ctx.obj.channel())


# -- parsing what admins type (pure) ------------------------------------------------------------


def parse_qos(text: str) -> vm_pb2.Bandwidth:
    """`in=1000:2000:512,out=500`; `none` (or empty) is no QoS. The manager checks the ranges."""
    bandwidth = vm_pb2.Bandwidth()
    if text.strip() in ("", "none"):
        return bandwidth
    for part in (p.strip() for p in text.split(",")):
        direction, eq, values = part.partition("=")
        numbers = values.split(":")
        if direction not in ("in", "out") or not eq or len(numbers) > 3 or not all(n.isdigit() for n in numbers):
            raise click.BadParameter(f"{part!r}: expected in=AVG[:PEAK[:BURST]] or out=…", param_hint="--qos")
        limit = bandwidth.inbound if direction == "in" else bandwidth.outbound
        limit.average, limit.peak, limit.burst = (int(n) for n in (numbers + ["0", "0"])[:3])
    return bandwidth


def parse_filter(name: str, params: tuple[str, ...]) -> vm_pb2.NetworkFilter:
    flt = vm_pb2.NetworkFilter(name="" if name == "none" else name)
    for p in params:
        key, eq, value = p.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{p!r}: expected NAME=VALUE (IP=10.0.0.5)", param_hint="--filter-param")
        flt.parameters.add(name=key, value=value)
    return flt


def qos_text(b: vm_pb2.Bandwidth) -> str:
    def one(tag: str, q: vm_pb2.BandwidthLimit) -> str:
        if not q.average:
            return ""
        values = [q.average, q.peak, q.burst]
        while values[-1] == 0:
            values.pop()
        return f"{tag}=" + ":".join(str(v) for v in values)
    return ",".join(t for t in (one("in", b.inbound), one("out", b.outbound)) if t) or "none"


def filter_text(f: vm_pb2.NetworkFilter) -> str:
    if not f.name:
        return "none"
    return f.name + "".join(f" {p.name}={p.value}" for p in f.parameters)


def _flags(p: profiles_pb2.VnicProfile) -> str:
    return ",".join(n for n, on in (("port-mirroring", p.port_mirroring), ("isolated", p.isolated),
                                    ("mtu-to-guest", p.mtu_to_guest)) if on) or "-"


# -- commands -------------------------------------------------------------------------------------


@click.group("profile")
def profile_group() -> None:
    """vNIC profiles: every network has one of its own name; a vNIC names a profile (a network means its own)."""


@profile_group.command("create")
@click.argument("name")
@click.option("--network", required=True, help="the VM network it belongs to")
@click.option("--qos", default="", help=QOS_HELP)
@click.option("--filter", "filter_name", default="none", show_default=True, help=FILTER_HELP)
@click.option("--filter-param", "filter_params", multiple=True, metavar="NAME=VALUE",
              help="a filter parameter: IP=ADDR, IPV6=ADDR, MAC=MAC, DHCPSERVER=ADDR, … (repeatable)")
@click.option("--port-mirroring", is_flag=True, help="mirror the network's bridge traffic to the vNIC")
@click.option("--isolated", is_flag=True, help="isolated vNICs cannot reach each other on the bridge")
@click.option("--mtu-to-guest", is_flag=True, help="give the guest's NIC the network's MTU")
@click.option("--datacenter", default="", help="default: Default")
@OUTPUT_OPTION
@click.pass_context
def profile_create(ctx, name, network, qos, filter_name, filter_params, port_mirroring, isolated, mtu_to_guest,
                   datacenter, output):
    """Create vNIC profile NAME on NETWORK."""
    p = _stub(ctx).CreateVnicProfile(profiles_pb2.CreateVnicProfileRequest(profile=profiles_pb2.VnicProfile(
        name=name, datacenter=datacenter, network=network, qos=parse_qos(qos),
        filter=parse_filter(filter_name, filter_params), port_mirroring=port_mirroring, isolated=isolated,
        mtu_to_guest=mtu_to_guest)), timeout=30)
    if output == "json":
        print_json(as_dict(p))
    else:
        click.echo(f"created vNIC profile {p.name} on network {p.network}")


@profile_group.command("list")
@click.option("--network", default="", help="only this network's")
@OUTPUT_OPTION
@click.pass_context
def profile_list(ctx, network, output):
    """All vNIC profiles."""
    profiles = _stub(ctx).ListVnicProfiles(profiles_pb2.ListVnicProfilesRequest(network=network), timeout=30).profiles
    if output == "json":
        print_json([as_dict(p) for p in profiles])
        return
    print_table(["NAME", "NETWORK", "DATACENTER", "QOS", "FILTER", "FLAGS", "GEN"],
                [(p.name + (" (default)" if p.is_default else ""), p.network, p.datacenter, qos_text(p.qos),
                  filter_text(p.filter), _flags(p), p.generation) for p in profiles])


def _print_profile(p: profiles_pb2.VnicProfile) -> None:
    print_fields([("name", p.name), ("network", p.network), ("datacenter", p.datacenter),
                  ("default", "yes (the network's own)" if p.is_default else "no"), ("qos", qos_text(p.qos)),
                  ("filter", filter_text(p.filter)), ("port mirroring", "yes" if p.port_mirroring else "no"),
                  ("isolated", "yes" if p.isolated else "no"), ("mtu to guest", "yes" if p.mtu_to_guest else "no"),
                  ("generation", p.generation), ("vNICs", ", ".join(p.vnics) or "-")])


@profile_group.command("show")
@click.argument("name")
@click.option("--datacenter", default="")
@OUTPUT_OPTION
@click.pass_context
def profile_show(ctx, name, datacenter, output):
    """One profile with the vNICs using it (VM/nic)."""
    p = _stub(ctx).GetVnicProfile(profiles_pb2.GetVnicProfileRequest(name=name, datacenter=datacenter), timeout=30)
    if output == "json":
        print_json(as_dict(p))
    else:
        _print_profile(p)


@profile_group.command("edit")
@click.argument("name")
@click.option("--qos", default=None, help=QOS_HELP)
@click.option("--filter", "filter_name", default=None, help=FILTER_HELP)
@click.option("--filter-param", "filter_params", multiple=True, metavar="NAME=VALUE",
              help="replaces the filter's parameters (repeatable)")
@click.option("--port-mirroring/--no-port-mirroring", default=None)
@click.option("--isolated/--no-isolated", default=None)
@click.option("--mtu-to-guest/--no-mtu-to-guest", default=None)
@click.option("--datacenter", default="")
@OUTPUT_OPTION
@click.pass_context
def profile_edit(ctx, name, qos, filter_name, filter_params, port_mirroring, isolated, mtu_to_guest, datacenter,
                 output):
    """Change what is given; the rest stays. Running vNICs using it are then out of sync (`vm nic sync`)."""
    stub = _stub(ctx)
    p = stub.GetVnicProfile(profiles_pb2.GetVnicProfileRequest(name=name, datacenter=datacenter), timeout=30)
    p.ClearField("vnics")
    if qos is not None:
        p.qos.CopyFrom(parse_qos(qos))
    if filter_name is not None or filter_params:
        p.filter.CopyFrom(parse_filter(filter_name if filter_name is not None else p.filter.name or "none",
                                       filter_params))
    for field, value in (("port_mirroring", port_mirroring), ("isolated", isolated), ("mtu_to_guest", mtu_to_guest)):
        if value is not None:
            setattr(p, field, value)
    updated = stub.UpdateVnicProfile(profiles_pb2.UpdateVnicProfileRequest(profile=p), timeout=30)
    if output == "json":
        print_json(as_dict(updated))
        return
    click.echo(f"edited vNIC profile {updated.name} (generation {updated.generation})")
    if updated.vnics:
        click.echo(f"{len(updated.vnics)} vNIC(s) use it; running ones are out of sync until `virtfleet vm nic sync "
                   "VM` (or their next start)")


@profile_group.command("delete")
@click.argument("name")
@click.option("--datacenter", default="")
@click.pass_context
def profile_delete(ctx, name, datacenter):
    """Delete a profile no vNIC, template or snapshot uses (a network's own goes with the network)."""
    _stub(ctx).DeleteVnicProfile(profiles_pb2.DeleteVnicProfileRequest(name=name, datacenter=datacenter), timeout=30)
    click.echo(f"deleted vNIC profile {name}")
