"""`virtfleet lab up|down|status`: bring a lab datacenter up and take it apart.

The state file is written after every step, so `lab down` can always take
apart whatever a failed `lab up` had made.
"""
from __future__ import annotations

import logging
import shutil
import time

import grpc

from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc

from virtfleet.enroll import enroll_host
from . import libvirtd, namespaces, processes
from .layout import LabHost, LabLayout, LabState
from .postgres import PrivateCluster

log = logging.getLogger(__name__)


class LabError(RuntimeError):
    """A lab operation that cannot go on; the message says what to do."""


def is_up(layout: LabLayout) -> bool:
    state = layout.read_state()
    if state is None:
        return False
    return (processes.alive(state.manager_pid) or any(processes.alive(h.agent_pid) for h in state.hosts)
            or namespaces.exists(state.switch_netns))


def up(layout: LabLayout, *, hosts: int, nics: int = 1, dsn: str | None = None,
       libvirt: bool | None = None) -> LabState:
    """libvirt: a libvirtd per host; None starts them when libvirtd and QEMU are installed."""
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
    state = LabState(state_dir=str(layout.state_dir), prefix=layout.prefix, switch_netns=layout.switch_netns,
                     manager_socket=str(layout.manager_socket))
    layout.write_state(state)
    try:
        _start_database(layout, state, dsn)
        _start_manager(layout, state)
        namespaces.create_switch(layout.switch_netns)
        with grpc.insecure_channel(f"unix://{layout.manager_socket}") as channel:
            stub = fleet_pb2_grpc.FleetServiceStub(channel)
            for i in range(1, hosts + 1):
                _add_host(layout, state, stub, i, nics, libvirt)
            _wait_reported(stub, [h.name for h in state.hosts])
    except BaseException:
        log.error("lab up failed; taking apart what it made")
        down(layout)
        raise
    return state


def _start_database(layout: LabLayout, state: LabState, dsn: str | None) -> None:
    if dsn:
        state.dsn = dsn
    else:
        cluster = PrivateCluster(layout.postgres_dir)
        state.postgres_dir = str(cluster.root)
        layout.write_state(state)
        cluster.init()
        cluster.start()
        state.dsn = cluster.create_database()
    layout.write_state(state)


def _start_manager(layout: LabLayout, state: LabState) -> None:
    log_file = layout.state_dir / "manager.log"
    state.manager_pid = processes.spawn(
        processes.manager_command(state.dsn, layout.manager_socket, layout.manager_pki), log_file)
    layout.write_state(state)
    processes.wait_serving(f"unix://{layout.manager_socket}", state.manager_pid, log_file)


def _add_host(layout: LabLayout, state: LabState, stub: fleet_pb2_grpc.FleetServiceStub, i: int, nics: int,
              libvirt: bool) -> None:
    name = f"host{i}"
    host_dir = layout.host_dir(name)
    host_dir.mkdir(parents=True, exist_ok=True)
    lab_host = LabHost(name=name, netns=layout.host_netns(name), address=namespaces.host_address(i),
                       agent_socket=str(host_dir / "agent.sock"), nics=[f"eth{k}" for k in range(nics)])
    state.hosts.append(lab_host)
    layout.write_state(state)
    namespaces.create_host(layout.switch_netns, lab_host.netns, f"{layout.prefix}h{i}", lab_host.address, nics)
    if libvirt:
        _start_libvirtd(layout, state, lab_host)
    pki = host_dir / "pki"
    enroll_host(stub, name=name, address=lab_host.address, endpoint=f"unix://{lab_host.agent_socket}", pki_out=pki)
    log_file = host_dir / "agent.log"
    lab_host.agent_pid = processes.spawn(
        processes.agent_command(lab_host.netns, host_dir / "agent.sock", pki, host_dir / "state",
                                lab_host.libvirt_uri), log_file)
    layout.write_state(state)
    _wait_socket(host_dir / "agent.sock", lab_host.agent_pid, log_file)


def _start_libvirtd(layout: LabLayout, state: LabState, lab_host: LabHost) -> None:
    paths = _libvirtd_paths(layout, lab_host.name)
    try:
        lab_host.libvirtd_pid = libvirtd.start(lab_host.netns, paths)
    except libvirtd.LibvirtdError as exc:
        raise LabError(f"{lab_host.name}: {exc}") from exc
    lab_host.libvirt_uri = paths.uri
    layout.write_state(state)
    if lab_host is state.hosts[0]:
        try:
            if libvirtd.save_seed(paths):
                log.info("saved QEMU's probed capabilities in %s for the next lab hosts", libvirtd.SEED_CACHE)
        except OSError as exc:  # another lab saving at the same moment; the next lab up tries again
            log.warning("could not save QEMU's capabilities in %s: %s", libvirtd.SEED_CACHE, exc)


def _libvirtd_paths(layout: LabLayout, name: str) -> libvirtd.LibvirtdPaths:
    return libvirtd.LibvirtdPaths(layout.host_dir(name) / "libvirt")


def _wait_socket(sock, pid: int, log_file, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not sock.exists():
        if not processes.alive(pid):
            raise LabError(f"agent {pid} exited during start; see {log_file}")
        if time.monotonic() > deadline:
            raise LabError(f"agent {pid} did not open {sock} within {timeout_s:.0f} s; see {log_file}")
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


def down(layout: LabLayout) -> list[str]:
    """Stops agents, then each host's VMs, networks and libvirtd, then manager and database;
    removes namespaces and the state directory."""
    state = layout.read_state()
    removed: list[str] = []
    netns_names = [layout.switch_netns]
    if state is not None:
        for h in state.hosts:
            processes.stop(h.agent_pid)
        for h in state.hosts:
            if h.libvirtd_pid or h.libvirt_uri:
                try:
                    libvirtd.stop(h.netns, _libvirtd_paths(layout, h.name), h.libvirtd_pid)
                except Exception:  # the namespace removal below still kills whatever runs there
                    log.exception("%s: stopping libvirtd failed", h.name)
        processes.stop(state.manager_pid)
        if state.postgres_dir:
            PrivateCluster(layout.postgres_dir).stop()
        netns_names += [h.netns for h in state.hosts]
    netns_names += [n for n in _lab_namespaces(layout) if n not in netns_names]
    for name in netns_names:
        if namespaces.exists(name):
            namespaces.remove(name)
            removed.append(name)
    if layout.state_dir.exists():
        shutil.rmtree(layout.state_dir)
    return removed


def _lab_namespaces(layout: LabLayout) -> list[str]:
    from pyroute2 import netns

    return [n for n in netns.listnetns()
            if n == layout.switch_netns or (n.startswith(layout.prefix + "host") and n[len(layout.prefix) + 4:].isdigit())]


def status(layout: LabLayout) -> dict:
    state = layout.read_state()
    if state is None:
        return {"up": False, "state_dir": str(layout.state_dir)}
    return {
        "up": is_up(layout),
        "state_dir": state.state_dir,
        "manager": {"address": f"unix://{state.manager_socket}", "pid": state.manager_pid,
                    "alive": processes.alive(state.manager_pid)},
        "database": {"dsn": state.dsn, "private_cluster": state.postgres_dir},
        "switch_netns": state.switch_netns,
        "hosts": [
            {"name": h.name, "netns": h.netns, "address": h.address, "nics": h.nics,
             "agent_socket": h.agent_socket, "agent_pid": h.agent_pid, "agent_alive": processes.alive(h.agent_pid),
             "libvirt_uri": h.libvirt_uri, "libvirtd_pid": h.libvirtd_pid,
             "libvirtd_alive": processes.alive(h.libvirtd_pid),
             "libvirt_socket": h.libvirt_uri.split("socket=", 1)[1] if "socket=" in h.libvirt_uri else ""}
            for h in state.hosts
        ],
    }
