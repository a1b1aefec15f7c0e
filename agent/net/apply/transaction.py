"""Apply a plan to the kernel all-or-nothing, surviving even the agent's death.

Before the first change, the journal records the previous configuration of
every touched link and the undo of every step. On any failure the completed
steps are undone in reverse; if the agent dies instead, the next start finds
the journal and undoes them then (`recover_from_journal`). Undos restore
values captured beforehand and tolerate "already so", so running all of them
is correct whether or not their step ever reached the kernel — which is what
makes recovery possible without knowing where the crash happened.

Order on disk for a change that succeeds: journal written → steps → verified →
`finish` (the caller saves the new configuration, the commit point) → journal
removed. A crash before `finish` has written leaves a journal whose
generation is not saved: recovery undoes it (before-state). A crash after
leaves the new configuration saved: recovery drops the journal (after-state).
A two-phase change (`keep_journal`) leaves the journal to its commit, which
follows the same order (agent.net.hostnet.changes).
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Sequence

from pyroute2 import IPRoute

from agent.net import crashpoints
from agent.net.apply import journal, operations, snapshot
from agent.net.apply.operations import Operation, Step
from agent.net.report.state import read_state
from virtfleet import failpoints
from virtfleet.errors import Aborted
from virtfleet.v1.netstate_pb2 import NetworkState

log = logging.getLogger(__name__)


class ApplyFailed(Aborted):
    """The kernel refused a step or the result did not verify; the host was rolled back (ABORTED).

    `diff` says, line by line, how the host differed from what was asked, so an
    admin can see why without reading agent logs; the message carries it too.
    """

    def __init__(self, summary: str, diff: str = "") -> None:
        super().__init__(f"{summary}\n{diff}" if diff else summary)
        self.summary = summary
        self.diff = diff


class InjectedFault(Exception):
    """Raised by the `fail_at` seam so tests can fail a transaction at any step."""


class SimulatedCrash(BaseException):
    """Raised by the `crash_at` seam: stands for the agent dying mid-transaction.

    A BaseException so that nothing on the way out rolls back: the journal
    must be left behind exactly as a killed process would leave it.
    """


def execute(
    ipr: IPRoute,
    steps: Sequence[Step],
    *,
    touched: Sequence[str],
    verify: Callable[[], list[str]],
    journal_path: pathlib.Path | None = None,
    fail_at: int | None = None,
    crash_at: int | None = None,
    current: NetworkState | None = None,
    keep_journal: bool = False,
    run: Callable[[IPRoute, Sequence[Operation]], None] | None = None,
    generation: int | None = None,
    finish: Callable[[], None] | None = None,
) -> None:
    """Run `steps`, then `verify` (which returns difference lines); roll back on any failure.

    `current` spares a state read when the caller planned from one just now.
    `keep_journal` leaves the journal behind after success: the change stays
    undoable (`recover_from_journal`) until the caller confirms it — the
    two-phase connectivity check — and a crash meanwhile rolls it back at start.
    `run` applies many steps at once (agent.net.apply.batch); a failure it
    raises carries `position`, the last step that may have reached the kernel,
    and `failed_position`, the step that was refused. `generation` goes into
    the journal: the saved configuration's generation that makes this change
    final. `finish` runs once the change is verified, before the journal goes
    (the caller saves its configuration there); if it fails, the change is
    rolled back.
    """
    previous = snapshot.take(current if current is not None else read_state(ipr), touched)
    if journal_path is not None:
        journal.write(journal_path, previous, steps, generation)
    position = 0
    try:
        if run is not None:
            position = _run_all(ipr, run, steps, fail_at, crash_at)
        for position, step in enumerate(steps[position:], start=position):
            if crash_at == position:
                raise SimulatedCrash(f"crash before step {position}")
            if fail_at == position:
                raise InjectedFault(f"fault injected before step {position}: {step.describe()}")
            operations.apply(ipr, step.do)
            crashpoints.progress(position, position + 1, len(steps))
        position = len(steps)
        failpoints.hit(crashpoints.KERNEL_ALL)
        if crash_at == position:
            raise SimulatedCrash("crash before verification")
        differences = verify()
        if differences:
            raise ApplyFailed("the host did not reach the requested state", "\n".join(differences))
        if finish is not None and not keep_journal:
            finish()
    except SimulatedCrash:
        raise
    except BaseException as error:
        position = getattr(error, "position", position)
        failing = getattr(error, "failed_position", position)
        failed = steps[failing].describe() if failing < len(steps) else "verification"
        failure = _roll_back(ipr, steps[: position + 1], previous, journal_path, error, failed)
        if isinstance(error, Exception):
            raise failure from error
        raise  # KeyboardInterrupt and the like keep their meaning once the host is restored
    if not keep_journal:
        journal.remove(journal_path)


def _run_all(ipr: IPRoute, run: Callable[[IPRoute, Sequence[Operation]], None], steps: Sequence[Step],
             fail_at: int | None, crash_at: int | None) -> int:
    """Steps up to the first fault-injection seam in one go; returns where the step loop goes on."""
    stop = min(p for p in (fail_at, crash_at, len(steps)) if p is not None)
    try:
        run(ipr, [step.do for step in steps[:stop]])
    except Exception as error:
        error.position = getattr(error, "position", max(stop - 1, 0))  # type: ignore[attr-defined]
        raise
    return stop


def recover_from_journal(ipr: IPRoute, journal_path: pathlib.Path, *, saved_generation: int | None = None) -> bool:
    """Undo a transaction a dead agent left behind; True if there was one to undo.

    Call at agent start, before serving requests, so the host is back to its
    last committed configuration before anyone reads or changes it. With
    `saved_generation`, a journal whose change reached that saved generation
    was committed before the agent died: it is dropped, not undone.
    """
    entry = journal.read(journal_path)
    if entry is None:
        return False
    if entry.generation is not None and saved_generation is not None and entry.generation <= saved_generation:
        log.warning("the change journaled in %s was saved (generation %d) before the agent died: kept",
                    journal_path, entry.generation)
        journal.remove(journal_path)
        return False
    log.warning("recovering %d journaled network steps from %s", len(entry.steps), journal_path)
    errors = _undo(ipr, entry.steps)
    differences = snapshot.diff(entry.previous, snapshot.take(read_state(ipr), entry.previous))
    if errors or differences:
        raise ApplyFailed(f"recovery from {journal_path} incomplete; journal kept", "\n".join(errors + differences))
    journal.remove(journal_path)
    return True


def _roll_back(
    ipr: IPRoute,
    steps: Sequence[Step],
    previous: snapshot.Snapshot,
    journal_path: pathlib.Path | None,
    cause: BaseException,
    failed: str,
) -> ApplyFailed:
    """Undo what ran (the failed step too: its undo is harmless if it never landed)."""
    errors = _undo(ipr, steps)
    differences = snapshot.diff(previous, snapshot.take(read_state(ipr), previous))
    if errors or differences:
        kept = f"; journal kept at {journal_path}" if journal_path else ""
        return ApplyFailed(f"{failed} failed ({_reason(cause)}) and rollback was incomplete{kept}", "\n".join(errors + differences))
    journal.remove(journal_path)
    diff = cause.diff if isinstance(cause, ApplyFailed) else ""
    return ApplyFailed(f"{failed} failed ({_reason(cause)}); the host was rolled back", diff)


def _undo(ipr: IPRoute, steps: Sequence[Step]) -> list[str]:
    """Best effort: one failed undo must not stop the others."""
    errors = []
    for done, step in enumerate(reversed(steps)):
        try:
            operations.apply(ipr, step.undo, tolerant=True)
        except Exception as error:  # keep undoing; report every failure at the end
            errors.append(f"undo `{step.undo.describe()}` failed: {error}")
        crashpoints.progress(done, done + 1, len(steps), undo=True)
    return errors


def _reason(error: BaseException) -> str:
    return error.summary if isinstance(error, ApplyFailed) else str(error)
