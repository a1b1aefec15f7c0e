"""What the lab's supervisor does when a process exits: systemd's `Restart=on-failure`, decided purely.

The production units (contrib/systemd) restart the manager and the agent on
failure; the lab does the same so that a fault test (kill -9 of an agent)
exercises what a real host would do. Same rules as systemd:
- a clean exit (status 0, or SIGHUP/SIGINT/SIGTERM/SIGPIPE) is not a failure:
  the process stays down, as after `systemctl stop` or a deliberate `kill`;
- any other exit or signal (SIGKILL, SIGSEGV, exit 1) restarts it after
  `delay_s` (RestartSec; the units use 2 s, a lab wants its faults short);
- a process started `burst` times within `interval_s` is not started again
  (StartLimitBurst / StartLimitIntervalSec, systemd's defaults): a crash loop ends.
"""
from __future__ import annotations

import enum
import signal
from collections.abc import Sequence
from dataclasses import dataclass

CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


@dataclass(frozen=True)
class RestartPolicy:
    delay_s: float = 0.2
    burst: int = 5
    interval_s: float = 10.0


class Outcome(enum.Enum):
    STOPPED = "stopped"        # exited cleanly: left down
    RESTART = "restarting"     # crashed: started again after the delay
    FAILED = "failed"          # crashed once too often: left down, like a unit in "failed"


def is_failure(returncode: int) -> bool:
    """returncode as subprocess gives it: negative for a signal."""
    if returncode < 0:
        return -returncode not in CLEAN_SIGNALS
    return returncode != 0


def after_exit(returncode: int, starts: Sequence[float], now: float, policy: RestartPolicy) -> Outcome:
    """starts: when the process was started (monotonic seconds), the last run included."""
    if not is_failure(returncode):
        return Outcome.STOPPED
    recent = [t for t in starts if now + policy.delay_s - t < policy.interval_s]
    return Outcome.FAILED if len(recent) >= policy.burst else Outcome.RESTART


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"
