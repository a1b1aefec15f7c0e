"""Named points where a test may have this process killed, for crash tests on real processes.

Armed only by the environment: `VIRTFLEET_FAILPOINTS="name[=action],…"` with action
`kill` (SIGKILL this process at the point; the default) or `sleep:SECONDS` (widen a
window so a test can act inside it). A production process has the variable unset,
and then `hit` is one dictionary lookup on an empty dict.
"""
from __future__ import annotations

import logging
import os
import signal
import time

ENV = "VIRTFLEET_FAILPOINTS"
log = logging.getLogger(__name__)


def _parse(text: str) -> dict[str, str]:
    armed: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, action = item.partition("=")
        armed[name] = action or "kill"
    return armed


_ARMED = _parse(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """Pass point `name`; if a test armed it, do what it asked."""
    if not _ARMED:
        return
    action = _ARMED.get(name)
    if action is None:
        return
    log.warning("failpoint %s: %s", name, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.removeprefix("sleep:")))


def arm(env: dict[str, str], *names: str, action: str = "kill") -> dict[str, str]:
    """A copy of `env` arming `names` (for the test that starts the process)."""
    return {**env, ENV: ",".join(f"{n}={action}" for n in names)}
