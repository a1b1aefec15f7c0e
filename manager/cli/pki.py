"""`virtfleet pki …`: the manager's CAs and certificates, and CA rollover."""
from __future__ import annotations

import click

from virtfleet.v1 import pki_pb2

from .output import OUTPUT_OPTION, as_dict, print_json, print_table, when


def _short(fp: str) -> str:
    """The first eight bytes of a fingerprint: enough to tell CAs and certificates apart on screen."""
    return fp[:23] if fp else "-"


@click.group("pki")
def pki_group() -> None:
    """The manager's certificate authorities and the certificates they issued."""


@pki_group.command("status")
@OUTPUT_OPTION
@click.pass_context
def pki_status(ctx, output):
    """The CAs (active, retiring), each host's certificate and the manager's client certificate."""
    _show(ctx.obj.pki().GetPkiStatus(pki_pb2.GetPkiStatusRequest(), timeout=30), output)


@pki_group.command("rotate-ca")
@OUTPUT_OPTION
@click.pass_context
def pki_rotate_ca(ctx, output):
    """Make a new CA: it signs from now on; the old one stays trusted until every host is renewed from the new."""
    status = ctx.obj.pki().RotateCa(pki_pb2.RotateCaRequest(), timeout=60)
    if output != "json":
        click.echo("a new CA is active; hosts are renewed from it at the next checks, then the old CA is retired")
    _show(status, output)


def _show(status: pki_pb2.PkiStatus, output: str) -> None:
    if output == "json":
        print_json(as_dict(status))
        return
    print_table(["CA", "STATE", "NOT AFTER"], [(ca.fingerprint, ca.state, when(ca.not_after)) for ca in status.cas],
                title="certificate authorities")
    rows = [(c.name, _short(c.fingerprint), _short(c.issuer_fingerprint), when(c.not_after), when(c.renew_at),
             "yes" if c.renew_due else "")
            for c in [*status.hosts, status.manager]]
    print_table(["NAME", "CERTIFICATE", "ISSUER CA", "NOT AFTER", "RENEW AT", "DUE"], rows, title="certificates")
