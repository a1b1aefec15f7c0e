"""Admission of VM changes on this host: one at a time per VM, a bounded number in all, none for a caller gone.

Each change holds one of the agent server's worker threads until it ends, and a
guest may take its time (a shutdown it ignores, a QEMU that hangs). That must cost
only its own VM's calls:
- at most `max_active` changes are admitted at once, waiting or running; past it a
  change is refused RESOURCE_EXHAUSTED at once, so reads, the other VMs' next
  calls and the network service keep their threads;
- a VM's changes run one at a time: a second one waits for the first, no longer
  than its caller waits (virtfleet.deadline), so a clean-up queued behind a
  start or stop sees the VM as that one left it;
- when its VM's turn comes, a change whose caller gave up is not started.

Failpoint `agent.vm.OP` (OP: define, start, stop, destroy, undefine, attach-nic,
detach-nic) is passed once the turn is taken and before the caller is checked:
a test widens it (`sleep:SECONDS`) to make a change that is stuck holding its VM.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from virtfleet import deadline, failpoints
from virtfleet.errors import DeadlineExceeded, FailedPrecondition, ResourceExhausted

DEFAULT_MAX_ACTIVE = 8
UNBOUNDED_WAIT_S = 30.0   # a caller without a deadline waits this long for its VM's turn


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    holders: int = 0   # changes of this VM admitted (running or waiting); the entry goes with the last


class VmChanges:
    def __init__(self, max_active: int = DEFAULT_MAX_ACTIVE) -> None:
        self.max_active = max_active
        self._guard = threading.Lock()
        self._active = 0
        self._turns: dict[str, _Turn] = {}

    @contextmanager
    def turn(self, vm: str, op: str) -> Iterator[None]:
        """Run one change of `vm` (`op` names it) when admitted and its VM's turn comes, if its caller still waits."""
        turn = self._admit(vm, op)
        try:
            if not turn.lock.acquire(timeout=deadline.wait_s(UNBOUNDED_WAIT_S)):
                if not deadline.waiting():
                    raise DeadlineExceeded(f"the caller gave up while {op} of VM {vm!r} waited for the VM's "
                                           "previous change; nothing was changed")
                raise FailedPrecondition(f"VM {vm!r} is still busy with another change; {op} was not started, "
                                         "try again when it is done")
            try:
                failpoints.hit(f"agent.vm.{op}")
                deadline.check(f"{op} of VM {vm!r} started")
                yield
            finally:
                turn.lock.release()
        finally:
            self._leave(vm, turn)

    def _admit(self, vm: str, op: str) -> _Turn:
        with self._guard:
            if self._active >= self.max_active:
                raise ResourceExhausted(f"this host is already running {self.max_active} VM changes (its limit, "
                                        f"vm_changes_max); {op} of VM {vm!r} was not started: retry when some are done")
            self._active += 1
            turn = self._turns.setdefault(vm, _Turn())
            turn.holders += 1
            return turn

    def _leave(self, vm: str, turn: _Turn) -> None:
        with self._guard:
            self._active -= 1
            turn.holders -= 1
            if turn.holders == 0:
                del self._turns[vm]
