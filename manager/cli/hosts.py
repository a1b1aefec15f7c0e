"""`virtfleet host …`"""
from __future__ import annotations

import time
from pathlib import Path

import click
from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc, pki_pb2, pki_pb2_grpc

from virtfleet.enroll import enroll_host
from .netreport_text import render_brctl_show, render_ip_addr
from .output import OUTPUT_OPTION, as_dict, print_fields, print_json, print_table, when


def _stub(ctx: click.Context) -> fleet_pb2_grpc.FleetServiceStub:
    return ctx.obj.fleet()


def _age_s(ts: Timestamp, now: float) -> float | None:
    """Seconds since the host's last report (agents heartbeat while quiet), None when it never reported."""
    if not ts.seconds and not ts.nanos:
        return None
    return round(max(now - (ts.seconds + ts.nanos / 1e9), 0.0), 1)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


# Statuses of a host whose agent reports (non-operational: it lacks a required network).
REPORTING = ("up", "non-operational")
# Shown while the admin's maintenance state is set; the monitored status is then in status_reason.
MAINTENANCE = ("maintenance", "preparing-maintenance")


def reachable(h: fleet_pb2.Host) -> bool:
    """Whether its agent reports: from the status, or for a host in maintenance from the monitored status beside it."""
    if h.status in MAINTENANCE:
        monitored = h.status_reason.removeprefix("monitored status: ").split(" ")[0]
        return monitored in REPORTING
    return h.status in REPORTING


@click.group("host")
def host_group() -> None:
    """Enroll, inspect and configure hosts."""


@host_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="the host's management IP address")
@click.option("--endpoint", default="", help="where its agent listens (default ADDRESS:54321, or unix:///PATH)")
@click.option("--cluster", default="", help="cluster to join (default: Default)")
@click.option("--nic-label", "nic_labels", multiple=True, metavar="NIC=LABEL",
              help="label NIC of the host (repeatable): once it reports, every network with LABEL is attached to "
                   "that NIC, as `host nic-label` does for a host already up")
@click.option("--pki-out", type=click.Path(path_type=Path), default=None,
              help="offline enrollment: make the agent's key HERE and write key, certificate and CA into this "
                   "directory (the agent's --pki-dir); without it, a one-time token the host enrolls with")
@OUTPUT_OPTION
@click.pass_context
def host_add(ctx, name, address, endpoint, cluster, nic_labels, pki_out, output):
    """Add host NAME: prints a one-time token and the `virtfleet-agent enroll` command to run on the host
    (its key is made there); with --pki-out, enrolls it at once with a key made here."""
    labels = [_nic_label(text) for text in nic_labels]
    if pki_out is not None:
        host = enroll_host(_stub(ctx), name=name, address=address, endpoint=endpoint, cluster=cluster,
                           pki_out=pki_out, nic_labels=labels)
        if output == "json":
            print_json(as_dict(host))
        else:
            click.echo(f"enrolled {host.name} ({host.address}); agent certificate {host.cert_fingerprint}")
            click.echo(f"start its agent with --pki-dir {pki_out}")
        return
    reply = _stub(ctx).EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address=address, endpoint=endpoint,
                                                              cluster=cluster, nic_labels=labels), timeout=30)
    command = enroll_command_line(reply)
    if output == "json":
        print_json({"host": as_dict(reply.host), "token": reply.enroll_token,
                    "token_expires_at": when(reply.token_expires_at), "ca_fingerprint": reply.ca_fingerprint,
                    "enroll_command": command})
        return
    click.echo(f"host {reply.host.name} ({reply.host.address}) is pending until it enrolls")
    click.echo(f"one-time token: {reply.enroll_token}")
    click.echo(f"expires:        {when(reply.token_expires_at)}")
    click.echo(f"CA fingerprint: {reply.ca_fingerprint}")
    if reply.host.nic_labels:
        click.echo("NIC labels:     " + ", ".join(f"{l.nic}={l.label}" for l in reply.host.nic_labels)
                   + " (their networks are attached at its first report)")
    click.echo("run on the host:")
    click.echo(f"  {command}")


def _nic_label(text: str) -> fleet_pb2.NicLabel:
    """NIC=LABEL; the manager checks both names (INVALID_ARGUMENT naming nic_labels[i])."""
    nic, sep, label = text.partition("=")
    if not sep or not nic or not label:
        raise click.BadParameter(f"{text!r} is not NIC=LABEL", param_hint="--nic-label")
    return fleet_pb2.NicLabel(nic=nic, label=label)


def enroll_command_line(reply: fleet_pb2.EnrollHostResponse) -> str:
    """The command the admin runs on the host; a wildcard listener's address is left for them to fill."""
    manager = reply.enroll_endpoint or "MANAGER:PORT"
    if manager.startswith(("0.0.0.0:", "[::]:")):
        manager = "MANAGER" + manager[manager.rindex(":"):]
    return (f"virtfleet-agent enroll --manager {manager} --token {reply.enroll_token} "
            f"--ca-fingerprint {reply.ca_fingerprint}")


@host_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def host_list(ctx, output):
    """All hosts with their status and last report."""
    hosts = _stub(ctx).ListHosts(fleet_pb2.ListHostsRequest(), timeout=30).hosts
    now = time.time()
    if output == "json":
        print_json([{**as_dict(h), "reachable": reachable(h),
                     "last_report_age_s": _age_s(h.last_report_at, now)} for h in hosts])
        return
    print_table(["NAME", "ADDRESS", "CLUSTER", "STATUS", "REACHABLE", "LAST REPORT", "REASON"],
                [(h.name, h.address, h.cluster, h.status, "yes" if reachable(h) else "no",
                  _age(_age_s(h.last_report_at, now)), h.status_reason) for h in hosts])


@host_group.command("show")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def host_show(ctx, name, output):
    """One host's inventory record."""
    h = _stub(ctx).GetHost(fleet_pb2.GetHostRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(h))
        return
    print_fields([("name", h.name), ("address", h.address), ("endpoint", h.endpoint),
                  ("datacenter", h.datacenter), ("cluster", h.cluster), ("status", h.status),
                  *([("reason", h.status_reason)] if h.status_reason else []),
                  ("certificate", h.cert_fingerprint), ("enrolled", when(h.enrolled_at)),
                  ("last report", when(h.last_report_at)),
                  ("NIC labels", ", ".join(f"{l.nic}={l.label}" for l in h.nic_labels) or "none")])


@host_group.command("activate")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def host_activate(ctx, name, output):
    """Bring host NAME back from maintenance: placement may use it again once it is up."""
    h = _stub(ctx).ActivateHost(fleet_pb2.ActivateHostRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(h))
    else:
        click.echo(f"host {h.name} is back in service; status {h.status}")


@host_group.command("report")
@click.argument("name")
@click.option("--cached", is_flag=True, help="show the stored report without asking the agent")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def host_report(ctx, name, cached, output):
    """The host's network as its agent reported it: `ip addr show` and `brctl show`."""
    report = _stub(ctx).GetHostNetworkReport(fleet_pb2.GetHostNetworkReportRequest(name=name, cached=cached),
                                             timeout=30)
    if output == "json":
        print_json(as_dict(report))
        return
    click.echo(f"# {report.host}: reported {when(report.reported_at)}")
    click.echo(f"[{report.host} ~]# ip addr show")
    click.echo(render_ip_addr(report.state), nl=False)
    click.echo(f"[{report.host} ~]# brctl show")
    click.echo(render_brctl_show(report.state), nl=False)


@host_group.command("setup-management")
@click.argument("name")
@click.option("--nic", default="eth0", show_default=True, help="the NIC that carries the management network")
@click.option("--plan", is_flag=True, help="only show the kernel changes the agent would make")
@click.pass_context
def host_setup_management(ctx, name, nic, plan):
    """Create bridge ovirtmgmt on NIC and move the NIC's address onto it."""
    reply = _stub(ctx).SetupHostManagementNetwork(
        fleet_pb2.SetupHostManagementNetworkRequest(name=name, nic=nic, dry_run=plan), timeout=60)
    if plan:
        click.echo(f"plan for {name}:" if reply.steps else f"{name}: nothing to do")
    elif reply.changed:
        click.echo(f"{name}: ovirtmgmt created on {nic}")
    else:
        click.echo(f"{name}: ovirtmgmt already in place on {nic}")
    for step in reply.steps:
        click.echo(f"  {step}")


@host_group.command("remove")
@click.argument("name")
@click.pass_context
def host_remove(ctx, name):
    """Forget a host and revoke its certificate (its agent keeps running until stopped)."""
    _stub(ctx).DeleteHost(fleet_pb2.DeleteHostRequest(name=name), timeout=30)
    click.echo(f"removed {name}")


@host_group.command("revoke-cert")
@click.argument("name")
@click.pass_context
def host_revoke_cert(ctx, name):
    """Trust no certificate for host NAME from now on; it must enroll again (`host add` gives a new token)."""
    reply = pki_pb2_grpc.PkiServiceStub(ctx.obj.channel()).RevokeHostCertificate(
        pki_pb2.RevokeHostCertificateRequest(name=name), timeout=30)
    click.echo(f"revoked the certificate of {name}" + (f" ({reply.fingerprint})" if reply.fingerprint else
                                                       " (it held none)"))


@host_group.command("maintenance")
@click.argument("name")
@click.pass_context
def host_maintenance(ctx, name):
    """Migrate every VM away from host NAME (placement chooses, a few at once), then keep it out of placement.

    Refused before anything moves when a VM cannot go anywhere (each such VM is named, with why);
    `virtfleet host activate NAME` brings it back."""
    for step in _stub(ctx).SetHostMaintenance(fleet_pb2.SetHostMaintenanceRequest(name=name), timeout=86_400):
        click.echo(maintenance_line(step))


def maintenance_line(p: fleet_pb2.MaintenanceProgress) -> str:
    if not p.vm:
        return p.message
    where = f" → {p.destination}" if p.destination else ""
    return f"VM {p.vm}{where}: {p.state}" + (f" ({p.message})" if p.state == "failed" else "") + \
        f"; {p.remaining} left on {p.host}"
