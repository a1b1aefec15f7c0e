"""`virtfleet`: the datacenter admin's command."""
from __future__ import annotations

import logging

import click
import grpc

from virtfleet.v1 import audit_pb2_grpc, fleet_pb2_grpc, macpool_pb2_grpc, pki_pb2_grpc, vms_pb2_grpc

from .audit import audit_group
from .connection import manager_target, open_channel, show_rpc_errors
from .hosts import host_group
from .lab import lab_group
from .macpools import cluster_group, macpool_group
from .networks import network_group
from .pki import pki_group
from .vms import snapshot_group, template_group, vm_group


class Session:
    """Opens the manager channel only when a command needs it (lab commands do not).

    Made before the command line is parsed (`main`), so that an error shown
    after the command has ended can still say which manager it tried.
    """

    def __init__(self) -> None:
        self._explicit: str | None = None
        self._channel = None
        self.target: str | None = None    # the manager's address, once a command has opened its channel

    def use(self, explicit: str | None) -> None:
        """--manager (or $VIRTFLEET_MANAGER), as the command line gave it."""
        self._explicit = explicit

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self.target = manager_target(self._explicit)
            self._channel = open_channel(self.target)
        return self._channel

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manager", envvar="VIRTFLEET_MANAGER", default=None,
              help="manager address: unix socket path or unix:///PATH (default: the running lab's, "
                   "else /run/virtfleet/manager.sock)")
@click.option("-v", "--verbose", is_flag=True, help="log what happens")
@click.version_option("0.1.0", prog_name="virtfleet")
@click.pass_context
def cli(ctx: click.Context, manager: str | None, verbose: bool) -> None:
    """Manage a fleet of Linux/KVM virtualization hosts."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.ensure_object(Session).use(manager)


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


def main() -> None:
    session = Session()
    show_rpc_errors(cli.main, lambda: session.target)(prog_name="virtfleet", obj=session)


if __name__ == "__main__":
    main()
