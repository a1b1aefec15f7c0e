"""`virtfleet lab …`"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..lab import lab as lab_ops
from ..lab.processes import StillRunning
from ..lab.layout import LabLayout
from .output import print_json, print_table

STATE_DIR = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                         help="lab files (default $VIRTFLEET_LAB_DIR or /var/lib/virtfleet/lab)")
PREFIX = click.option("--prefix", default=None, help="network namespace name prefix (default vf-)")


def _layout(state_dir: Path | None, prefix: str | None) -> LabLayout:
    return LabLayout.from_env(state_dir, prefix)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group("lab")
def lab_group() -> None:
    """A datacenter on this machine: hosts are network namespaces."""


@lab_group.command("up")
@click.option("--hosts", type=int, default=2, show_default=True)
@click.option("--nics", type=int, default=1, show_default=True, help="NICs per host: eth0…eth{K-1}")
@click.option("--dsn", default=None, help="use this PostgreSQL instead of a private cluster")
@click.option("--libvirt/--no-libvirt", default=None,
              help="a libvirtd per host for VMs (default: when libvirtd and QEMU are installed)")
@click.option("--guest", is_flag=True,
              help="also build (or find) the cached test guest for `vm create --guest`: lab hosts cannot fetch it")
@STATE_DIR
@PREFIX
def lab_up(hosts, nics, dsn, libvirt, guest, state_dir, prefix):
    """Start database, manager and N hosts with their agents (and libvirtd); enroll them.

    A supervisor stays behind and restarts a crashed manager or agent (as systemd's Restart=on-failure)."""
    layout = _layout(state_dir, prefix)
    try:
        state = lab_ops.up(layout, hosts=hosts, nics=nics, dsn=dsn, libvirt=libvirt, guest=guest)
    except lab_ops.LabError as exc:
        _fail(exc)
    click.echo(f"lab up in {state.state_dir}: manager unix://{state.manager_socket}")
    if state.fleet_endpoint:
        click.echo(f"  remote fleet API: virtfleet --manager {state.fleet_endpoint} --cert-dir {state.admin_cert_dir} …")
    for h in state.hosts:
        click.echo(f"  {h.name}: netns {h.netns}, {h.address}, agent pid {h.agent.pid if h.agent else '-'}"
                   + (f", libvirt {h.libvirt_uri}" if h.libvirt_uri else ""))


@lab_group.command("down")
@STATE_DIR
@click.option("--prefix", default=None,
              help="only a check: the lab's own prefix is in its lab.json (refused if it differs)")
def lab_down(state_dir, prefix):
    """Stop everything the lab recorded in its lab.json, remove its namespaces and files; return once
    all of its processes have exited."""
    layout = _layout(state_dir, None)
    try:
        removed = lab_ops.down(layout, prefix=prefix or os.environ.get("VIRTFLEET_LAB_PREFIX") or None)
    except (lab_ops.LabError, StillRunning) as exc:
        _fail(exc)
    click.echo(f"lab down: removed {len(removed)} network namespaces" if removed else "lab down: nothing was up")


@lab_group.command("status")
@STATE_DIR
@click.option("--prefix", default=None, hidden=True, help="ignored: the lab's prefix is in its lab.json")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def lab_status(state_dir, prefix, output):
    """What the lab runs: hosts, namespaces, agent sockets, pids and restarts, the manager's address."""
    try:
        st = lab_ops.status(_layout(state_dir, None))
    except lab_ops.LabError as exc:
        _fail(exc)
    if output == "json":
        print_json(st)
        return
    if not st["up"] and "hosts" not in st:
        click.echo(f"no lab in {st['state_dir']}")
        return
    m = st["manager"]
    click.echo(f"lab in {st['state_dir']} ({'up' if st['up'] else 'not running'}), prefix {st['prefix']}; "
               f"manager {m['address']} {_process(m)}, {m['restarts']} restarts; supervisor {_pid(st['supervisor'])}")
    if st.get("fleet_endpoint"):
        click.echo(f"remote fleet API {st['fleet_endpoint']}: "
                   f"virtfleet --manager {st['fleet_endpoint']} --cert-dir {st['admin_cert_dir']} …")
    print_table(["HOST", "NETNS", "ADDRESS", "AGENT", "RESTARTS", "LIBVIRTD PID", "AGENT SOCKET"],
                [(h["name"], h["netns"], h["address"],
                  _process({k.removeprefix("agent_"): v for k, v in h.items() if k.startswith("agent_")}),
                  str(h["agent_restarts"]),
                  (f"{h['libvirtd_pid']}{'' if h['libvirtd_alive'] else ' (dead)'}" if h.get("libvirtd_pid") else "-"),
                  h["agent_socket"])
                 for h in st["hosts"]])


def _pid(p: dict) -> str:
    return f"pid {p['pid']}{'' if p['alive'] else ' (dead)'}" if p.get("pid") else "-"


def _process(unit: dict) -> str:
    """`pid 123` while it runs; otherwise its status and how its last run ended."""
    if unit["status"] == "running":
        return _pid(unit)
    return unit["status"] + (f" ({unit['last_exit']})" if unit["last_exit"] else "")
