"""`virtfleet`: the datacenter admin's command."""
from __future__ import annotations

import logging

import click
import grpc

from virtfleet.v1 import (admins_pb2_grpc, audit_pb2_grpc, events_pb2_grpc, fleet_pb2_grpc, macpool_pb2_grpc,
                          pki_pb2_grpc, vms_pb2_grpc)

from .admins import admin_group
from .audit import audit_group
from .connection import open_channel, resolve_endpoint, show_rpc_errors
from .events import events_command
from .hosts import host_group
from .lab import lab_group
from .macpools import cluster_group, macpool_group
from .networks import network_group
from .pki import pki_group
from .profiles import profile_group
from .vms import snapshot_group, template_group, vm_group


class Session:
    """Opens the manager channel only when a command needs it (lab commands do not).

    Made before the command line is parsed (`main`), so that an error shown
    after the command has ended can still say which manager it tried.
    """

    def __init__(self) -> None:
        self._explicit: str | None = None
        self._cert_dir: str | None = None
        self._channel = None
        self.target: str | None = None    # the manager's address, once a command has opened its channel

    def use(self, explicit: str | None, cert_dir: str | None = None) -> None:
        """--manager and --cert-dir (or their environment variables), as the command line gave them."""
        self._explicit = explicit
        self._cert_dir = cert_dir

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            endpoint = resolve_endpoint(self._explicit, self._cert_dir)
            self.target = endpoint.target
            self._channel = open_channel(endpoint.target, cert_dir=endpoint.cert_dir)
        return self._channel

    def admins(self) -> admins_pb2_grpc.AdminServiceStub:
        return admins_pb2_grpc.AdminServiceStub(self.channel())

    def fleet(self) -> fleet_pb2_grpc.FleetServiceStub:
        return fleet_pb2_grpc.FleetServiceStub(self.channel())

    def audit(self) -> audit_pb2_grpc.AuditServiceStub:
        return audit_pb2_grpc.AuditServiceStub(self.channel())

    def vms(self) -> vms_pb2_grpc.VmServiceStub:
        return vms_pb2_grpc.VmServiceStub(self.channel())

    def macpools(self) -> macpool_pb2_grpc.MacPoolServiceStub:
        return macpool_pb2_grpc.MacPoolServiceStub(self.channel())

    def pki(self) -> pki_pb2_grpc.PkiServiceStub:
        return pki_pb2_grpc.PkiServiceStub(self.channel())

    def events(self) -> events_pb2_grpc.EventServiceStub:
        return events_pb2_grpc.EventServiceStub(self.channel())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manager", envvar="VIRTFLEET_MANAGER", default=None,
              help="manager address: unix socket path (or unix:///PATH), or HOST:PORT of its remote API "
                   "(default: cli.toml's, else the running lab's, else /run/virtfleet/manager.sock)")
@click.option("--cert-dir", envvar="VIRTFLEET_CERT_DIR", default=None,
              help="for HOST:PORT: directory of your admin certificate (ca.pem, cert.pem, key.pem)")
@click.option("-v", "--verbose", is_flag=True, help="log what happens")
@click.version_option("0.1.0", prog_name="virtfleet")
@click.pass_context
def cli(ctx: click.Context, manager: str | None, cert_dir: str | None, verbose: bool) -> None:
    """Manage a fleet of Linux/KVM virtualization hosts.

    Settings: flags, then VIRTFLEET_MANAGER / VIRTFLEET_CERT_DIR, then ~/.config/virtfleet/cli.toml
    (keys manager, cert_dir)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.ensure_object(Session).use(manager, cert_dir)


cli.add_command(admin_group)
cli.add_command(audit_group)
cli.add_command(host_group)
cli.add_command(lab_group)
cli.add_command(network_group)
cli.add_command(vm_group)
cli.add_command(template_group)
cli.add_command(snapshot_group)
cli.add_command(macpool_group)
cli.add_command(cluster_group)
cli.add_command(pki_group)
cli.add_command(profile_group)
cli.add_command(events_command)


def main() -> None:
    session = Session()
    show_rpc_errors(cli.main, lambda: session.target)(prog_name="virtfleet", obj=session)


if __name__ == "__main__":
    main()
