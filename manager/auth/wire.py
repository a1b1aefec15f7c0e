"""What a fleet-API client and the manager agree on: metadata keys and where to log in.

Both sides import these (the server in manager/auth, the client in manager/client.py),
so a key spelled differently on one side cannot happen.
"""
from __future__ import annotations

import os
import re

SESSION_KEY = "x-virtfleet-session"       # the token a login on `<socket>.login` returned
REQUEST_ID_KEY = "x-request-id"           # sent by the client (or made by the manager) and sent back
LOGIN_SUFFIX = ".login"

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def login_path(fleet_socket: str) -> str:
    """/run/virtfleet/manager.sock → /run/virtfleet/manager.sock.login"""
    return fleet_socket.removeprefix("unix://") + LOGIN_SUFFIX


def new_request_id() -> str:
    """32 random hex digits (a uuid4's length; made without a UUID object: it runs on every call)."""
    return os.urandom(16).hex()


def sane_request_id(value: str | bytes | None) -> str | None:
    """A client's request id if it is one we may log and echo (≤64 of [A-Za-z0-9._-]); None otherwise."""
    if isinstance(value, bytes):
        return None
    return value if value and _REQUEST_ID.fullmatch(value) else None
