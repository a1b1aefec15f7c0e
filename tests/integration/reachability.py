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
