"""`virtfleet lab up|down|status`: bring a lab datacenter up and take it apart.

lab.json records every step as it is taken — each namespace with its inode as
soon as it exists, each process with its start time — so `lab down` can take
apart whatever a failed `lab up` had made, and nothing else: it reads the
prefix, the namespaces and the processes from lab.json alone.

The manager and the agents are started by the lab's supervisor (its own
process, `supervisor.py`), which restarts them on failure as systemd would.
"""
from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import socket
import uuid

from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc
from ..client import add_admin, open_channel
from . import libvirtd, namespaces, processes
from .layout import LabHost, LabLayout, LabState, ProcessId, Supervised, UnknownStateFormat
from .postgres import PrivateCluster

log = logging.getLogger(__name__)
LAB_ADMIN = "root"     # the remote API's first admin: its certificate is in the lab's admin-cert/


class LabError(RuntimeError):
    """A lab operation that cannot go on; the message says what to do."""


def is_up(layout: LabLayout) -> bool:
    state = recorded(layout)
    if state is None:
        return False
    return (any(processes.running(p) for p in _processes(state))
            or any(namespaces.inode(n) == made for n, made in state.namespaces.items()))


def up(layout: LabLayout, *, hosts: int, nics: int = 1, dsn: str | None = None,
       libvirt: bool | None = None, guest: bool = False) -> LabState:
    """libvirt: a libvirtd per host; None starts them when libvirtd and QEMU are installed.

    guest: also make sure the test guest (`vm create --guest`) is cached. Lab hosts have no route to the
    Debian mirror, so their agents cannot build it; it is built here, in the machine's own namespace,
    while the lab comes up (~20 s the first time on a machine, ~2 s to check after that)."""
    if not 1 <= hosts <= 200:
        raise LabError("--hosts must be between 1 and 200")
    if not 1 <= nics <= 8:
        raise LabError("--nics must be between 1 and 8")
    if libvirt is None:
        libvirt = libvirtd.available()
    elif libvirt and not libvirtd.available():
        raise LabError("libvirtd or qemu-system-x86_64 is not installed (./dev installs them); "
                       "or run the lab without VMs: --no-libvirt")
    if layout.state_file.exists():
        what = "is already up" if is_up(layout) else "left state behind"
        raise LabError(f"a lab {what} in {layout.state_dir}; run `virtfleet lab down` first")
    taken = [n for n in [layout.switch_netns, *(layout.host_netns(f"host{i}") for i in range(1, hosts + 1))]
             if namespaces.exists(n)]
    if taken:
        raise LabError(f"network namespaces already exist: {', '.join(taken)}; another lab with prefix "
                       f"{layout.prefix!r}? choose another --prefix or remove them")
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    layout.state_dir.chmod(0o755)
    layout.write_state(LabState(state_dir=str(layout.state_dir), prefix=layout.prefix,
                                switch_netns=layout.switch_netns, manager_socket=str(layout.manager_socket)))
    names = [f"host{i}" for i in range(1, hosts + 1)]
    builder = _start_guest_build() if guest and libvirt else None
    try:
        with _start_supervisor(layout) as ready, ThreadPoolExecutor(1) as background:
            database = background.submit(_start_database, layout, dsn)   # starts while the hosts are made
            _add_namespace(layout, layout.switch_netns)
            namespaces.wire_switch(layout.switch_netns)
            for i in range(1, hosts + 1):
                _make_host(layout, i, nics, libvirt)
            database.result()
            _wait_supervisor(layout, ready)
        _start_manager(layout)
        with open_channel(f"unix://{layout.manager_socket}") as channel:
            add_admin(channel, name=LAB_ADMIN, role="admin", out_dir=layout.admin_cert_dir)
            stub = fleet_pb2_grpc.FleetServiceStub(channel)
            for name in names:
                _enroll_host(layout, stub, name)
                if libvirt:
                    _reload_libvirtd_tls(layout, name)
            _wait_agents(layout)
            _wait_reported(stub, names)
        if builder is not None:
            _finish_guest_build(builder)
    except BaseException:
        log.error("lab up failed; taking apart what it made")
        if builder is not None and builder.poll() is None:
            builder.kill()
        down(layout)
        raise
    state = layout.read_state()
    assert state is not None
    return state


def _start_supervisor(layout: LabLayout) -> BinaryIO:
    """Started first, so that it is ready by the time the database is; returns the pipe it says so on."""
    ready_r, ready_w = os.pipe()
    ready = os.fdopen(ready_r, "rb", buffering=0)
    try:
        proc = processes.start([sys.executable, "-m", "manager.lab.supervisor", str(layout.state_dir),
                                "--ready-fd", str(ready_w)], layout.supervisor_log, pass_fds=(ready_w,))
    except BaseException:
        ready.close()
        raise
    finally:
        os.close(ready_w)
    with layout.locked_state() as state:
        state.supervisor = processes.identify(proc.pid)
    return ready


def _wait_supervisor(layout: LabLayout, ready: BinaryIO, timeout_s: float = 30.0) -> None:
    readable, _, _ = select.select([ready], [], [], timeout_s)
    if not (readable and ready.read(64)):
        raise LabError(f"the lab's supervisor did not start; its log ({layout.supervisor_log}):\n"
                       f"{processes.tail(layout.supervisor_log)}")


def _tell_supervisor(layout: LabLayout) -> None:
    """SIGHUP: lab.json wants a process the supervisor has not started yet."""
    state = layout.read_state()
    assert state is not None
    if not processes.running(state.supervisor):
        raise LabError(f"the lab's supervisor is not running; see {layout.supervisor_log}")
    os.kill(state.supervisor.pid, signal.SIGHUP)


def _start_database(layout: LabLayout, dsn: str | None) -> None:
    if dsn:
        with layout.locked_state() as state:
            state.dsn = dsn
        return
    cluster = PrivateCluster(layout.postgres_dir)
    with layout.locked_state() as state:
        state.postgres_dir = str(cluster.root)
    cluster.init()
    cluster.start()
    with layout.locked_state() as state:
        state.postgres = processes.identify(cluster.pid() or 0)
    dsn = cluster.create_database()
    with layout.locked_state() as state:
        state.dsn = dsn


def _add_namespace(layout: LabLayout, name: str) -> None:
    made = namespaces.add(name)
    with layout.locked_state() as state:
        state.namespaces[name] = made


def _start_manager(layout: LabLayout) -> None:
    with layout.locked_state() as state:
        state.manager = Supervised()
        state.fleet_endpoint = f"127.0.0.1:{_free_port()}"   # the remote fleet API, on loopback only
        state.admin_cert_dir = str(layout.admin_cert_dir)
    _tell_supervisor(layout)
    pid = _wait_started(layout, lambda s: s.manager, "the manager", layout.manager_log)
    try:
        processes.wait_serving(f"unix://{layout.manager_socket}", pid, layout.manager_log)
    except processes.StartFailed as exc:
        raise LabError(f"the manager did not start: {exc}") from exc


def _free_port() -> int:
    """A port free now; kept in lab.json so the manager's restarts listen on the same one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_started(layout: LabLayout, pick: Callable[[LabState], Supervised | None], what: str, log_file,
                  timeout_s: float = 30.0) -> int:
    """The pid the supervisor started for the unit `pick` selects."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = layout.read_state()
        rec = pick(state) if state else None
        if rec is not None and rec.status == "running" and rec.pid:
            return rec.pid
        if rec is not None and rec.status != "starting":
            raise LabError(f"{what} exited during start ({rec.last_exit}); see {log_file}:\n"
                           f"{processes.tail(log_file)}")
        if time.monotonic() > deadline:
            raise LabError(f"the lab's supervisor did not start {what} within {timeout_s:.0f} s; "
                           f"see {layout.supervisor_log}")
        time.sleep(0.01)


def _start_guest_build() -> subprocess.Popen:
    """The agent's own builder, as a process: the manager's side never imports the agent."""
    return subprocess.Popen([sys.executable, "-m", "agent.guest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish_guest_build(builder: subprocess.Popen) -> None:
    out, err = builder.communicate(timeout=600)
    if builder.returncode != 0:
        raise LabError(f"building the test guest failed: {err.strip()[-800:]}")
    log.info("test guest cached: %s", out.strip())


def _make_host(layout: LabLayout, i: int, nics: int, libvirt: bool) -> None:
    """Its namespace, NICs and libvirtd: all that needs no manager."""
    name = f"host{i}"
    layout.host_dir(name).mkdir(parents=True, exist_ok=True)
    lab_host = LabHost(name=name, netns=layout.host_netns(name), address=namespaces.host_address(i),
                       agent_socket=str(layout.host_dir(name) / "agent.sock"), nics=[f"eth{k}" for k in range(nics)])
    with layout.locked_state() as state:
        state.hosts.append(lab_host)
    _add_namespace(layout, lab_host.netns)
    namespaces.wire_host(layout.switch_netns, lab_host.netns, f"{layout.prefix}h{i}", lab_host.address, nics)
    if libvirt:
        _start_libvirtd(layout, lab_host, first=i == 1)


def _enroll_host(layout: LabLayout, stub: fleet_pb2_grpc.FleetServiceStub, name: str) -> None:
    """Enrollment as on a real host — `host add` gives a token, `virtfleet-agent enroll` in the host's
    namespace makes the key there and sends the CSR — then the agent is asked of the supervisor, which
    starts it while the next host enrolls."""
    state = layout.read_state()
    assert state is not None
    lab_host = state.host(name)
    reply = stub.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address=lab_host.address,
                                                        endpoint=f"unix://{lab_host.agent_socket}"), timeout=30)
    done = subprocess.run(processes.enroll_command(lab_host.netns, reply.enroll_endpoint, reply.enroll_token,
                                                   reply.ca_fingerprint, layout.agent_pki(name),
                                                   layout.agent_libvirt_pki(name)),
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise LabError(f"{name}: `virtfleet-agent enroll` failed: {done.stderr.strip()}")
    with layout.locked_state() as state:
        state.host(name).agent = Supervised()
    _tell_supervisor(layout)


def _start_libvirtd(layout: LabLayout, lab_host: LabHost, *, first: bool) -> None:
    """The host's libvirtd, listening for migrations with TLS on the host's address, with the certificate its
    agent is enrolled with (the agent's libvirt PKI directory) and a host UUID of its own.

    It starts before the host is enrolled (while the database starts: a lab up ~1.3 s shorter for two hosts
    than starting it after enrollment), with a throwaway certificate that nothing trusts; enrollment writes
    the real one and `_reload_libvirtd_tls` has libvirtd load it."""
    paths = _libvirtd_paths(layout, lab_host.name)
    tls = libvirtd.LibvirtdTls(address=lab_host.address, pki_dir=layout.agent_libvirt_pki(lab_host.name),
                               host_uuid=str(uuid.uuid4()))
    try:
        pid = libvirtd.start(lab_host.netns, paths, tls=tls)
    except libvirtd.LibvirtdError as exc:
        raise LabError(f"{lab_host.name}: {exc}") from exc
    with layout.locked_state() as state:
        h = state.host(lab_host.name)
        h.libvirtd, h.libvirt_uri = processes.identify(pid), paths.uri
    if first:
        try:
            if libvirtd.save_seed(paths):
                log.info("saved QEMU's probed capabilities in %s for the next lab hosts", libvirtd.SEED_CACHE)
        except OSError as exc:  # another lab saving at the same moment; the next lab up tries again
            log.warning("could not save QEMU's capabilities in %s: %s", libvirtd.SEED_CACHE, exc)


def _reload_libvirtd_tls(layout: LabLayout, name: str) -> None:
    try:
        libvirtd.reload_tls(_libvirtd_paths(layout, name))
    except libvirtd.LibvirtdError as exc:
        raise LabError(f"{name}: {exc}") from exc


def _libvirtd_paths(layout: LabLayout, name: str) -> libvirtd.LibvirtdPaths:
    return libvirtd.LibvirtdPaths(layout.host_dir(name) / "libvirt")


def _wait_agents(layout: LabLayout, timeout_s: float = 30.0) -> None:
    """Every agent serves its socket, in its first run (one that crashed on the way fails lab up)."""
    state = layout.read_state()
    assert state is not None
    deadline = time.monotonic() + timeout_s
    for h in state.hosts:
        log_file = layout.agent_log(h.name)
        _wait_started(layout, lambda s, n=h.name: s.host(n).agent, f"agent of {h.name}", log_file)
        while not os.path.exists(h.agent_socket):
            rec = layout.read_state().host(h.name).agent
            if rec.status != "running" or rec.restarts:
                raise LabError(f"agent of {h.name} exited during start ({rec.last_exit}); see {log_file}:\n"
                               f"{processes.tail(log_file)}")
            if time.monotonic() > deadline:
                raise LabError(f"agent of {h.name} did not open {h.agent_socket} within {timeout_s:.0f} s; "
                               f"see {log_file}")
            time.sleep(0.02)


def _wait_reported(stub: fleet_pb2_grpc.FleetServiceStub, names: list[str], timeout_s: float = 30.0) -> None:
    """The lab is up when the manager has heard from every agent over mutual TLS."""
    deadline = time.monotonic() + timeout_s
    while True:
        hosts = {h.name: h for h in stub.ListHosts(fleet_pb2.ListHostsRequest(), timeout=10).hosts}
        waiting = [n for n in names if hosts.get(n) is None or hosts[n].status != "up"]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabError(f"the manager has no report from {', '.join(waiting)} after {timeout_s:.0f} s")
        time.sleep(0.05)


def recorded(layout: LabLayout, prefix: str | None = None) -> LabState | None:
    """The lab recorded in layout's state directory; a prefix, when given, must be the one it has."""
    try:
        state = layout.read_state()
    except UnknownStateFormat as exc:
        raise LabError(f"{layout.state_file} was written by another version of virtfleet ({exc}); take the lab "
                       "down with that version, or stop its processes and remove its namespaces by hand") from exc
    if state is not None and prefix is not None and prefix != state.prefix:
        raise LabError(f"the lab in {layout.state_dir} has prefix {state.prefix!r}, not {prefix!r}; "
                       "lab down takes the prefix from its lab.json: leave --prefix out")
    return state


def down(layout: LabLayout, *, prefix: str | None = None) -> list[str]:
    """Takes apart exactly what lab.json records, and returns once all of it has exited.

    The supervisor first (it would restart what is being stopped), then the manager and the agents,
    each host's VMs, networks and libvirtd, the database, and last the namespaces with whatever still
    runs in them. Returns the namespaces removed. Without a lab.json nothing is touched: the directory
    may be anyone's."""
    state = recorded(layout, prefix)
    if state is None:
        return []
    processes.stop(state.supervisor)
    state = layout.read_state()   # with the last pids the supervisor started
    assert state is not None
    processes.stop_all([state.manager.process if state.manager else None,
                        *(h.agent.process for h in state.hosts if h.agent)])
    _stop_libvirtds(layout, state)
    if state.postgres_dir:
        PrivateCluster(Path(state.postgres_dir)).stop()
    processes.stop(state.postgres)   # pg_ctl waited for its pid file to go; this waits for the process
    removed = [name for name, made in state.namespaces.items() if namespaces.remove(name, made=made)]
    processes.stop_all(_processes(state))   # all gone already; this is the proof
    shutil.rmtree(layout.state_dir)
    return removed


def _stop_libvirtds(layout: LabLayout, state: LabState) -> None:
    """Guests and virtual networks first: their QEMU and dnsmasq would outlive libvirtd. Only in the lab's
    own namespaces: what runs in a namespace that merely has one of its names is not the lab's."""
    ours = {n for n, made in state.namespaces.items() if namespaces.inode(n) == made}
    for h in state.hosts:
        if h.netns in ours and (h.libvirtd or h.libvirt_uri):
            try:
                pid = h.libvirtd.pid if processes.running(h.libvirtd) else None
                libvirtd.stop(h.netns, _libvirtd_paths(layout, h.name), pid)
            except Exception:  # the namespace removal still stops whatever runs there
                log.exception("%s: stopping libvirtd failed", h.name)
    processes.stop_all(h.libvirtd for h in state.hosts)


def _processes(state: LabState) -> list[ProcessId | None]:
    return [state.supervisor, state.manager.process if state.manager else None, state.postgres,
            *(h.agent.process for h in state.hosts if h.agent), *(h.libvirtd for h in state.hosts)]


def status(layout: LabLayout) -> dict:
    state = recorded(layout)
    if state is None:
        return {"up": False, "state_dir": str(layout.state_dir)}
    return {
        "up": is_up(layout),
        "state_dir": state.state_dir,
        "prefix": state.prefix,
        "supervisor": {"pid": state.supervisor.pid if state.supervisor else None,
                       "alive": processes.running(state.supervisor)},
        "manager": {"address": f"unix://{state.manager_socket}", **_unit_status(state.manager)},
        "fleet_endpoint": state.fleet_endpoint,      # the remote fleet API (TLS + admin certificate)
        "admin_cert_dir": state.admin_cert_dir,      # LAB_ADMIN's certificate for it
        "database": {"dsn": state.dsn, "private_cluster": state.postgres_dir,
                     "pid": state.postgres.pid if state.postgres else None,
                     "alive": processes.running(state.postgres)},
        "switch_netns": state.switch_netns,
        "namespaces": sorted(state.namespaces),
        "hosts": [
            {"name": h.name, "netns": h.netns, "address": h.address, "nics": h.nics,
             "agent_socket": h.agent_socket,
             **{f"agent_{k}": v for k, v in _unit_status(h.agent).items()},
             "libvirt_uri": h.libvirt_uri,
             "libvirt_tls_uri": libvirtd.tls_uri(h.address) if h.libvirt_uri else "",   # what migrations reach
             "libvirtd_pid": h.libvirtd.pid if h.libvirtd else None,
             "libvirtd_alive": processes.running(h.libvirtd),
             "libvirt_socket": h.libvirt_uri.split("socket=", 1)[1] if "socket=" in h.libvirt_uri else ""}
            for h in state.hosts
        ],
    }


def _unit_status(rec: Supervised | None) -> dict:
    rec = rec or Supervised(status="not started")
    return {"pid": rec.pid, "alive": processes.running(rec.process), "status": rec.status,
            "restarts": rec.restarts, "last_exit": rec.last_exit}
