"""Starting and stopping the lab's manager and agents as background processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class StartFailed(RuntimeError):
    pass


def spawn(cmd: list[str], log_file: Path) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    return proc.pid


def manager_command(dsn: str, socket: Path, pki_dir: Path) -> list[str]:
    return [sys.executable, "-m", "manager.main", "--dsn", dsn, "--listen", str(socket), "--pki-dir", str(pki_dir)]


def agent_command(netns: str, socket: Path, pki_dir: Path, state_dir: Path, libvirt_uri: str = "") -> list[str]:
    # `ip netns exec` also remounts /sys so the agent sees its own namespace's devices there.
    return ["ip", "netns", "exec", netns, sys.executable, "-m", "agent.main", "--listen", f"unix://{socket}",
            "--pki-dir", str(pki_dir), "--state-dir", str(state_dir),
            *(["--libvirt-uri", libvirt_uri] if libvirt_uri else [])]


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int | None, *, grace_s: float = 5.0) -> None:
    if not alive(pid):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            _reap(pid)
            time.sleep(0.02)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_serving(target: str, pid: int, log_file: Path, *, timeout_s: float = 30.0,
                 credentials: grpc.ChannelCredentials | None = None, options: list | None = None) -> None:
    """Block until the process answers its health check; fail with its log if it dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            raise StartFailed(f"process {pid} exited during start; its log ({log_file}):\n{_tail(log_file)}")
        channel = (grpc.secure_channel(target, credentials, options=options or []) if credentials
                   else grpc.insecure_channel(target))
        with channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.05)
    raise StartFailed(f"no answer from {target} within {timeout_s:.0f} s; log ({log_file}):\n{_tail(log_file)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
