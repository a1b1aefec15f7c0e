"""Does a packet from one namespace reach an address? Asked without ping (not installed everywhere).

A TCP connection attempt to a closed port is answered by the peer's kernel with
a reset: "refused" proves the SYN arrived and the answer came back; a timeout or
"no route / host unreachable" proves it did not.
"""
from __future__ import annotations

import subprocess
import sys

_CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except ConnectionRefusedError:
    pass
except OSError as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
"""


def probe(netns: str, address: str, port: int = 9, timeout_s: float = 2.0) -> bool:
    """True when `address` answered from inside `netns` (the discard port is closed everywhere here)."""
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _CONNECT, address, str(port),
                           str(timeout_s)], capture_output=True, text=True)
    return done.returncode == 0


_SERVE = """
import socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(16)
print("ready", flush=True)
while True:
    conn, peer = srv.accept()
    conn.sendall((peer[0] + "\\n").encode())
    conn.close()
"""

_ASK = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        s.settimeout(float(sys.argv[3]))
        print(s.makefile().readline().strip())
except OSError as exc:
    sys.exit(1)
"""


class Listener:
    """A TCP service in a namespace answering each connection with the address it saw the caller come from.

    Unlike a reset from a closed port, its answer cannot come from a firewall's
    REJECT (libvirt's chains reject with ICMP port-unreachable, which TCP reports as
    "refused"), and the address it saw shows whether NAT rewrote the caller.
    """

    def __init__(self, netns: str, port: int) -> None:
        self.netns, self.port = netns, port
        self._proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", _SERVE, str(port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self._proc.stdout.readline().strip() != "ready":
            self.close()
            raise AssertionError(f"listener in {netns} did not start: {self._proc.stderr.read()}")

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()


def seen_as(netns: str, address: str, port: int, timeout_s: float = 2.0) -> str | None:
    """The caller's address as a Listener at `address` saw it, or None when no answer came."""
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _ASK, address, str(port),
                           str(timeout_s)], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None
