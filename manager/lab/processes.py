"""Starting and stopping the lab's processes, and knowing them again later.

A lab's pids outlive the command that started them (they are in lab.json), and
pids are recycled: a process is named by its pid *and* its start time
(`ProcessId`), so stopping a lab never signals a stranger that got an old pid.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from .layout import ProcessId


class StartFailed(RuntimeError):
    pass


class StillRunning(RuntimeError):
    """Processes that outlived SIGKILL (a task stuck in the kernel): whatever waits for them cannot finish."""


def start(cmd: list[str], log_file: Path, *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """In its own session (a terminal's ^C is not for it), output appended to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, pass_fds=pass_fds)


def spawn(cmd: list[str], log_file: Path) -> int:
    return start(cmd, log_file).pid


def manager_command(dsn: str, socket: Path, pki_dir: Path, fleet_listen: str = "",
                    enroll_socket: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "manager.main", "--dsn", dsn, "--listen", str(socket), "--pki-dir", str(pki_dir),
            *(["--fleet-listen", fleet_listen] if fleet_listen else []),
            *(["--enroll-listen", f"unix://{enroll_socket}"] if enroll_socket else [])]


def enroll_command(netns: str, enroll_endpoint: str, token: str, ca_fingerprint: str, pki_dir: Path,
                   libvirt_pki_dir: Path | None = None) -> list[str]:
    """`virtfleet-agent enroll` inside the host's namespace: its key is made there, as on a real host."""
    return ["ip", "netns", "exec", netns, sys.executable, "-m", "agent.main", "enroll", "--manager", enroll_endpoint,
            "--token", token, "--ca-fingerprint", ca_fingerprint, "--pki-dir", str(pki_dir),
            *(["--libvirt-pki-dir", str(libvirt_pki_dir)] if libvirt_pki_dir else [])]


def agent_command(netns: str, socket: Path, pki_dir: Path, state_dir: Path, libvirt_uri: str = "",
                  health_socket: Path | None = None, libvirt_pki_dir: Path | None = None) -> list[str]:
    # `ip netns exec` also remounts /sys so the agent sees its own namespace's devices there;
    # it execs the agent, so the pid started is the agent's own.
    return ["ip", "netns", "exec", netns, sys.executable, "-m", "agent.main", "--listen", f"unix://{socket}",
            "--pki-dir", str(pki_dir), "--state-dir", str(state_dir),
            "--health-socket", str(health_socket) if health_socket else "",
            *(["--libvirt-uri", libvirt_uri] if libvirt_uri else []),
            *(["--libvirt-pki-dir", str(libvirt_pki_dir)] if libvirt_pki_dir else [])]


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces): [state, ppid, …]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None


def identify(pid: int) -> ProcessId | None:
    fields = _stat(pid) if pid > 0 else None
    return ProcessId(pid, int(fields[19])) if fields else None


def alive(pid: int | None) -> bool:
    """A zombie is not alive: it has exited, only its parent has not read its status yet."""
    if not pid:
        return False
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def running(proc: ProcessId | None) -> bool:
    """This very process is alive (not merely a process with its pid)."""
    if proc is None:
        return False
    fields = _stat(proc.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc.started


def stop(pid: int | ProcessId | None, *, grace_s: float = 5.0) -> None:
    stop_all([pid], grace_s=grace_s)


def stop_all(procs: Iterable[int | ProcessId | None], *, grace_s: float = 5.0) -> None:
    """SIGTERM to all at once, SIGKILL to those still alive after grace_s; returns once all have exited."""
    ids = [p if isinstance(p, ProcessId) else identify(p) for p in procs if p]
    ids = [p for p in ids if p is not None and _still_running(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in ids:
            _signal(p, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 60.0)
        while (ids := [p for p in ids if _still_running(p)]) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not ids:
            return
    raise StillRunning(f"processes {', '.join(str(p.pid) for p in ids)} are still running a minute after SIGKILL "
                       "(stuck in the kernel?); try again once they have exited")


def _signal(proc: ProcessId, sig: int) -> None:
    if running(proc):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass


def _still_running(proc: ProcessId) -> bool:
    """Reaps it when it is our own child, so its zombie does not linger."""
    try:
        os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return running(proc)


def wait_serving(target: str, pid: int, log_file: Path, *, timeout_s: float = 30.0,
                 credentials=None, options: list | None = None) -> None:
    """Block until the process answers its health check; fail with its log if it dies first."""
    import grpc  # here, not at the top: the lab's supervisor imports this module and needs no gRPC
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from ..client import open_channel   # the manager's socket: log in, as every client does

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            raise StartFailed(f"process {pid} exited during start; its log ({log_file}):\n{tail(log_file)}")
        channel = (grpc.secure_channel(target, credentials, options=options or []) if credentials
                   else open_channel(target))
        with channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.05)
    raise StartFailed(f"no answer from {target} within {timeout_s:.0f} s; log ({log_file}):\n{tail(log_file)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
