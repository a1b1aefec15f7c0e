"""`virtfleet audit …`: what differs from what it should be, and fixing it."""
from __future__ import annotations

import click

from virtfleet.v1 import audit_pb2, audit_pb2_grpc

from rich.table import Table

from .output import OUTPUT_OPTION, as_dict, console, print_json

CATEGORY_CHOICES = ["network", "unexpected", "vnic", "mac-duplicate", "mac-foreign", "nic-order", "guest-nic",
                    "unreachable", "vnic-profile", "vm-state"]


def _stub(ctx: click.Context) -> audit_pb2_grpc.AuditServiceStub:
    return ctx.obj.audit()


@click.group("audit", invoke_without_command=True)
@click.option("--host", default="", help="only this host's findings")
@click.option("--category", type=click.Choice(CATEGORY_CHOICES), default=None, help="only this category")
@click.option("--cached", is_flag=True, help="show the latest periodic audit instead of running one")
@OUTPUT_OPTION
@click.pass_context
def audit_group(ctx, host, category, cached, output):
    """Audit the fleet: desired vs actual networks, vNICs, MACs, NIC order, silent hosts."""
    if ctx.invoked_subcommand is not None:
        return
    stub = _stub(ctx)
    if cached:
        report = stub.ListFindings(audit_pb2.ListFindingsRequest(host=host, category=category or ""), timeout=120)
    else:
        report = stub.RunAudit(audit_pb2.RunAuditRequest(host=host, category=category or ""), timeout=120)
    if output == "json":
        print_json(as_dict(report))
        return
    if not report.findings:
        click.echo(f"no findings ({report.hosts} hosts audited in {report.duration_s:.2f} s)")
        return
    _print_findings(report.findings)
    click.echo(f"{len(report.findings)} of {report.total} findings; {report.hosts} hosts audited in "
               f"{report.duration_s:.2f} s. Fix a network finding with `virtfleet audit fix ID --plan`.")


@audit_group.command("fix")
@click.argument("finding")
@click.option("--plan", is_flag=True, help="only show what would be done")
@click.option("--yes", is_flag=True, help="apply without asking (the plan is still shown)")
@OUTPUT_OPTION
@click.pass_context
def audit_fix(ctx, finding, plan, yes, output):
    """Fix FINDING where safe: re-apply the host's desired networks (the plan is shown first)."""
    if output == "json" and not (plan or yes):
        raise click.UsageError("with -o json, say --plan or --yes (there is no prompt for scripts)")
    stub = _stub(ctx)
    if plan or output != "json":
        shown = stub.FixFinding(audit_pb2.FixFindingRequest(id=finding, plan=True), timeout=120)
        if output == "json":
            print_json(as_dict(shown))
            return
        _show_plan(shown)
        if plan:
            return
        if not yes and not click.confirm("apply this plan?", default=False):
            click.echo("nothing done")
            return
    reply = stub.FixFinding(audit_pb2.FixFindingRequest(id=finding, plan=False), timeout=180)
    if output == "json":
        print_json(as_dict(reply))
        return
    click.echo(f"applied on {reply.finding.host}: {len(reply.steps)} steps")
    if reply.remaining:
        click.echo(f"{len(reply.remaining)} findings remain on {reply.finding.host}:")
        for f in reply.remaining:
            click.echo(f"  {f.id} {f.category} {f.object}: expected {f.expected}, found {f.found}")
    else:
        click.echo(f"{reply.finding.host}: no findings left")


def _print_findings(findings) -> None:
    """Ids, severities, categories and hosts are what people grep and copy: never cut or wrapped."""
    table = Table(show_edge=False, header_style="bold")
    for name in ("ID", "SEVERITY", "CATEGORY", "HOST"):
        table.add_column(name, no_wrap=True)
    for name in ("OBJECT", "EXPECTED", "FOUND"):
        table.add_column(name, overflow="fold")
    for f in findings:
        table.add_row(f.id, f.severity, f.category, f.host or "-", f.object, f.expected, f.found)
    console().print(table)


def _show_plan(reply: audit_pb2.FixFindingResponse) -> None:
    f = reply.finding
    click.echo(f"finding {f.id} on {f.host}: {f.object}: expected {f.expected}, found {f.found}")
    click.echo("plan: re-apply the host's desired networks (setupNetworks):" if reply.steps
               else "plan: the agent sees nothing to change")
    for step in reply.steps:
        click.echo(f"  {step}")
