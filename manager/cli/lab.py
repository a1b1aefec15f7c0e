"""`virtfleet lab …`"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..lab import lab as lab_ops
from ..lab.layout import LabLayout
from .output import print_json, print_table

STATE_DIR = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                         help="lab files (default $VIRTFLEET_LAB_DIR or /var/lib/virtfleet/lab)")
PREFIX = click.option("--prefix", default=None, help="network namespace name prefix (default vf-)")


def _layout(state_dir: Path | None, prefix: str | None) -> LabLayout:
    return LabLayout.from_env(state_dir, prefix)


@click.group("lab")
def lab_group() -> None:
    """A datacenter on this machine: hosts are network namespaces."""


@lab_group.command("up")
@click.option("--hosts", type=int, default=2, show_default=True)
@click.option("--nics", type=int, default=1, show_default=True, help="NICs per host: eth0…eth{K-1}")
@click.option("--dsn", default=None, help="use this PostgreSQL instead of a private cluster")
@click.option("--libvirt/--no-libvirt", default=None,
              help="a libvirtd per host for VMs (default: when libvirtd and QEMU are installed)")
@STATE_DIR
@PREFIX
def lab_up(hosts, nics, dsn, libvirt, state_dir, prefix):
    """Start database, manager and N hosts with their agents (and libvirtd); enroll them."""
    layout = _layout(state_dir, prefix)
    try:
        state = lab_ops.up(layout, hosts=hosts, nics=nics, dsn=dsn, libvirt=libvirt)
    except lab_ops.LabError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"lab up in {state.state_dir}: manager unix://{state.manager_socket}")
    for h in state.hosts:
        click.echo(f"  {h.name}: netns {h.netns}, {h.address}, agent pid {h.agent_pid}"
                   + (f", libvirt {h.libvirt_uri}" if h.libvirt_uri else ""))


@lab_group.command("down")
@STATE_DIR
@PREFIX
def lab_down(state_dir, prefix):
    """Stop everything the lab started and remove its namespaces and files."""
    layout = _layout(state_dir, prefix)
    removed = lab_ops.down(layout)
    click.echo(f"lab down: removed {len(removed)} network namespaces" if removed else "lab down: nothing was up")


@lab_group.command("status")
@STATE_DIR
@PREFIX
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def lab_status(state_dir, prefix, output):
    """What the lab runs: hosts, namespaces, agent sockets and pids, the manager's address."""
    st = lab_ops.status(_layout(state_dir, prefix))
    if output == "json":
        print_json(st)
        return
    if not st["up"] and "hosts" not in st:
        click.echo(f"no lab in {st['state_dir']}")
        return
    click.echo(f"lab in {st['state_dir']} ({'up' if st['up'] else 'not running'}); "
               f"manager {st['manager']['address']} pid {st['manager']['pid']}")
    print_table(["HOST", "NETNS", "ADDRESS", "AGENT PID", "LIBVIRTD PID", "AGENT SOCKET"],
                [(h["name"], h["netns"], h["address"],
                  f"{h['agent_pid']}{'' if h['agent_alive'] else ' (dead)'}",
                  (f"{h['libvirtd_pid']}{'' if h['libvirtd_alive'] else ' (dead)'}" if h.get("libvirtd_pid") else "-"),
                  h["agent_socket"])
                 for h in st["hosts"]])
