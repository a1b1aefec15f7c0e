"""The named points where a crash test may kill the agent while it changes the host's networks.

Every on-disk and kernel step of a host network change passes one of these
(virtfleet.failpoints does nothing unless a test armed a name through the
environment). They are listed here, in the order a one-phase setupNetworks
passes them, so a test can kill the agent at each in turn: whatever the
point, the restarted agent must find the host exactly before or exactly after
the change, with its saved configuration saying which.
"""

from __future__ import annotations

from virtfleet import failpoints

JOURNAL_WRITTEN = "net.journal.written"        # the journal is on disk; no kernel step yet
KERNEL_FIRST = "net.kernel.first"              # the first step (or batch of steps) reached the kernel
KERNEL_HALF = "net.kernel.half"                # about half the steps reached the kernel
KERNEL_ALL = "net.kernel.all"                  # every step reached the kernel; not yet verified
CONFIG_SAVING = "net.config.saving"            # verified; the new configuration not yet written
CONFIG_SAVED = "net.config.saved"              # the new configuration is on disk; the journal still is too
JOURNAL_REMOVED = "net.journal.removed"        # the journal is gone; the caller has no reply yet
UNDO_HALF = "net.undo.half"                    # a rollback (failure, timer, recovery) is half done
PROBE_CREATED = "net.probe.created"            # the kernel-feature probe's devices exist

# A one-phase change passes these in this order; a two-phase one passes the first four at
# SetupNetworks and the next three at CommitNetworks.
CHANGE_POINTS = (JOURNAL_WRITTEN, KERNEL_FIRST, KERNEL_HALF, KERNEL_ALL, CONFIG_SAVING, CONFIG_SAVED,
                 JOURNAL_REMOVED)
ALL = (*CHANGE_POINTS, UNDO_HALF, PROBE_CREATED)


def progress(before: int, after: int, total: int, *, undo: bool = False) -> None:
    """Steps `before`..`after` of `total` just reached the kernel (`undo`: of a rollback).

    Batches move many steps at once, so a point is passed when a batch crosses it.
    """
    half = max(total // 2, 1)
    if undo:
        if before < half <= after:
            failpoints.hit(UNDO_HALF)
        return
    if before < 1 <= after:
        failpoints.hit(KERNEL_FIRST)
    if total > 2 and before < half <= after:
        failpoints.hit(KERNEL_HALF)
