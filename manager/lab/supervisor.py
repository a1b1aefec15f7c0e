"""The lab's supervisor: keeps a lab's manager and agents running, as systemd keeps their units.

`lab up` returns to the shell, so something has to stay behind to restart a
crashed agent: one supervisor process per lab. It is the parent of every
manager and agent process it starts, so it learns how each run ended (a clean
exit is left down, a kill -9 is restarted: `restart_policy`), and it records
their pids, restarts and last exits in lab.json.

`lab up` adds a unit by writing its record (status "starting") and sending
SIGHUP. `lab down` sends SIGTERM first: the supervisor exits at once and leaves
its processes running for `lab down` to stop, so nothing it would restart is
being taken down, and `lab down` works the same when the supervisor is gone.

Run as `python -m manager.lab.supervisor STATE_DIR [--ready-fd N]`; with
--ready-fd it writes a line there once its signal handlers are in place.
"""
from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from . import processes
from .layout import LabLayout
from .restart_policy import Outcome, RestartPolicy, after_exit, describe_exit
from .units import Unit, record, units

log = logging.getLogger("virtfleet.lab.supervisor")

# Signals wake the supervisor; it also looks every so often, so that it ends when its lab.json is gone
# (a lab up killed before it could record the supervisor's pid, or a state directory removed by hand).
LOOK_AGAIN_S = 30.0


class Supervisor:
    def __init__(self, layout: LabLayout, policy: RestartPolicy = RestartPolicy()) -> None:
        self.layout = layout
        self.policy = policy
        self.children: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, list[float]] = {}     # monotonic start times, for the start limit
        self.due: dict[str, float] = {}              # when a crashed unit may start again
        self.stopping = False

    def run(self, ready_fd: int | None = None) -> None:
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGCHLD, signal.SIGHUP):   # wake up: a child ended / lab.json has a new unit
            signal.signal(sig, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        log.info("supervising the lab in %s", self.layout.state_dir)
        try:
            while not self.stopping:
                self._reap()
                if not self._reconcile():
                    break
                next_due = min(self.due.values()) - time.monotonic() if self.due else LOOK_AGAIN_S
                select.select([wake_r], [], [], max(0.0, min(next_due, LOOK_AGAIN_S)))
                while _drain(wake_r):
                    pass
        except FileNotFoundError:   # lab.json removed under us
            pass
        if self.stopping:
            log.info("stopping; the lab's processes are left to `lab down`")
        else:
            log.info("lab.json is gone: nothing left to supervise")

    def _stop(self, *_) -> None:
        self.stopping = True

    def _reap(self) -> None:
        for name, proc in list(self.children.items()):
            returncode = proc.poll()
            if returncode is None:
                continue
            del self.children[name]
            now = time.monotonic()
            outcome = after_exit(returncode, self.starts[name], now, self.policy)
            how = describe_exit(returncode)
            log.warning("%s (pid %d) ended: %s; %s", name, proc.pid, how, outcome.value)
            if outcome is Outcome.RESTART:
                self.due[name] = now + self.policy.delay_s
            with self.layout.locked_state() as state:
                rec = record(state, name)
                rec.status, rec.process, rec.last_exit = outcome.value, None, how

    def _reconcile(self) -> bool:
        """Starts what lab.json wants and nothing runs for; False when the lab is gone."""
        state = self.layout.read_state()
        if state is None:
            return False
        now = time.monotonic()
        for unit in units(state):
            if self.stopping:
                break
            if unit.name in self.children:
                continue
            status = record(state, unit.name).status
            if status == "starting" or (status == "restarting" and self.due.get(unit.name, 0.0) <= now):
                self._start(unit, restart=status == "restarting")
        return True

    def _start(self, unit: Unit, *, restart: bool) -> None:
        now = time.monotonic()
        self.due.pop(unit.name, None)
        try:
            proc = processes.start(unit.command, unit.log_file)
        except OSError as exc:
            log.error("%s: cannot start: %s", unit.name, exc)
            with self.layout.locked_state() as state:
                rec = record(state, unit.name)
                rec.status, rec.last_exit = Outcome.FAILED.value, f"cannot start: {exc}"
            return
        self.children[unit.name] = proc
        self.starts[unit.name] = [t for t in self.starts.get(unit.name, []) if now - t < self.policy.interval_s]
        self.starts[unit.name].append(now)
        with self.layout.locked_state() as state:
            rec = record(state, unit.name)
            rec.status, rec.process = "running", processes.identify(proc.pid)
            rec.restarts += int(restart)
        log.info("%s %s: pid %d", "restarted" if restart else "started", unit.name, proc.pid)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m manager.lab.supervisor",
                                description="Keep a lab's manager and agents running (started by `lab up`).")
    p.add_argument("state_dir", type=Path)
    p.add_argument("--ready-fd", type=int, help="write a line to this descriptor once signals are handled")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Supervisor(LabLayout(args.state_dir)).run(args.ready_fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
