"""`virtfleet admin …`: admins of the remote fleet API and their certificates."""
from __future__ import annotations

from pathlib import Path

import click

from virtfleet.v1 import admins_pb2

from ..client import add_admin
from .output import OUTPUT_OPTION, as_dict, print_json, print_table, when

@click.group("admin")
def admin_group() -> None:
    """Admins of the remote fleet API: each holds a client certificate from the manager's CA."""


@admin_group.command("add")
@click.argument("name")
@click.option("--role", required=True, help="admin (everything), operator (VMs, vNICs, templates, snapshots) "
                                            "or auditor (read-only)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="directory for ca.pem, cert.pem and key.pem (0600); the key is made here and never sent")
@click.pass_context
def admin_add(ctx: click.Context, name: str, role: str, out_dir: Path) -> None:
    """Issue NAME a certificate for the remote fleet API (`virtfleet --manager HOST:PORT --cert-dir DIR`)."""
    admin = add_admin(ctx.obj.channel(), name=name, role=role, out_dir=out_dir)
    click.echo(f"admin {admin.name} ({admin.role}): certificate {admin.cert_fingerprint} in {out_dir}")
    click.echo(f"use it: virtfleet --manager HOST:PORT --cert-dir {out_dir} …")


@admin_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def admin_list(ctx: click.Context, output: str) -> None:
    """Every admin, revoked ones too."""
    admins = ctx.obj.admins().ListAdmins(admins_pb2.ListAdminsRequest(), timeout=30).admins
    if output == "json":
        print_json([as_dict(a) for a in admins])
        return
    print_table(["NAME", "ROLE", "CREATED", "BY", "REVOKED", "FINGERPRINT"],
                [(a.name, a.role, when(a.created_at), a.created_by,
                  when(a.revoked_at) if a.HasField("revoked_at") else "-", a.cert_fingerprint[:23] + "…")
                 for a in admins])


@admin_group.command("revoke")
@click.argument("name")
@click.pass_context
def admin_revoke(ctx: click.Context, name: str) -> None:
    """NAME's certificate is refused from its next call on."""
    admin = ctx.obj.admins().RevokeAdmin(admins_pb2.RevokeAdminRequest(name=name), timeout=30)
    click.echo(f"revoked admin {admin.name} (certificate {admin.cert_fingerprint})")


@admin_group.command("role")
@click.argument("name")
@click.argument("role")
@click.pass_context
def admin_role(ctx: click.Context, name: str, role: str) -> None:
    """Give NAME another ROLE (admin, operator, auditor), from its next call on."""
    admin = ctx.obj.admins().SetAdminRole(admins_pb2.SetAdminRoleRequest(name=name, role=role), timeout=30)
    click.echo(f"admin {admin.name} now has role {admin.role}")
