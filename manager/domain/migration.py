"""Live migration's decisions: the options an admin may ask for, and how a restarted manager settles a migration.

Both are pure: the service (manager/service/migrations.py) reads the request, the
agents and the database, and asks these functions what follows from what it read.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from virtfleet.errors import InvalidArgument

# Upper bounds of the contract (vms.proto MigrateVirtualMachineRequest); 0 means "the default" for each.
MAX_DOWNTIME_MS = 60_000
MAX_BANDWIDTH_MIB_S = 100_000
MAX_TIMEOUT_S = 86_400


@dataclass(frozen=True)
class MigrationOptions:
    """What the admin asked for; 0 is libvirt's default (downtime), unlimited (bandwidth) or the manager's
    migration_timeout_s (timeout, filled in by the service)."""

    max_downtime_ms: int = 0
    bandwidth_mib_s: int = 0
    auto_converge: bool = False
    post_copy: bool = False
    timeout_s: int = 0

    def as_json(self) -> dict[str, int | bool]:
        """As vm_migrations.options keeps them (what was asked, for the record)."""
        return {"max_downtime_ms": self.max_downtime_ms, "bandwidth_mib_s": self.bandwidth_mib_s,
                "auto_converge": self.auto_converge, "post_copy": self.post_copy, "timeout_s": self.timeout_s}


def check_options(*, max_downtime_ms: int, bandwidth_mib_s: int, auto_converge: bool, post_copy: bool,
                  timeout_s: int) -> MigrationOptions:
    """The options, or InvalidArgument naming the first field out of range.

    The fields are unsigned on the wire, so "≤ 0" arrives as 0 (the default) and a -1 typed into
    another client arrives as 2³²−1: the upper bounds are what refuse absurd values.
    Post-copy with auto-converge is refused: auto-converge throttles the guest so pre-copy can finish,
    post-copy switches over without finishing it; libvirt accepts both and the throttle only slows
    the post-copy phase's page faults.
    """
    for field, value, high, unit in (("max_downtime_ms", max_downtime_ms, MAX_DOWNTIME_MS, "ms"),
                                     ("bandwidth_mib_s", bandwidth_mib_s, MAX_BANDWIDTH_MIB_S, "MiB/s"),
                                     ("timeout_s", timeout_s, MAX_TIMEOUT_S, "s")):
        if not 0 <= value <= high:
            raise InvalidArgument(field, f"at most {high} {unit} (0: the default), not {value}")
    if post_copy and auto_converge:
        raise InvalidArgument("post_copy", "post-copy and auto-converge exclude each other: give one of them")
    return MigrationOptions(max_downtime_ms, bandwidth_mib_s, auto_converge, post_copy, timeout_s)


# -- a restarted manager settling what it left running ---------------------------------------------


class Settlement(enum.Enum):
    WAIT = "wait"          # the source's libvirt still runs the job: ask again when it has ended
    MOVED = "moved"        # runs on the destination only: the record moves there, the row succeeded
    STAYED = "stayed"      # runs on the source only: the row failed, the record stays
    LOST = "lost"          # runs on neither: the row failed, the record is left for the audit (vm-state)
    TWICE = "twice"        # runs on both: the row failed, the record is left for the audit (vm-state)


@dataclass(frozen=True)
class SettleOutcome:
    settlement: Settlement
    state: str             # the row's final state ('' while WAIT)
    message: str

    @property
    def moves_record(self) -> bool:
        return self.settlement is Settlement.MOVED


@dataclass(frozen=True)
class RunningMigration:
    """A vm_migrations row left running (by this manager's previous life)."""

    id: int
    vm_id: int
    vm: str
    source_host_id: int | None
    source: str | None
    dest_host_id: int | None
    destination: str | None


def settle(row: RunningMigration, source_has_job: bool, source_runs: bool, dest_runs: bool) -> SettleOutcome:
    """Where the VM ended up decides the record, never a guess: a libvirt job still running is waited for,
    a VM running on exactly one of the two hosts is recorded there, anything else is failed with what was
    found, the VM's record left as it is (the audit's vm-state finding reports it)."""
    src, dst = row.source or "the source (deleted)", row.destination or "the destination (deleted)"
    if source_has_job:
        return SettleOutcome(Settlement.WAIT, "", f"the migration job still runs on {src}")
    if dest_runs and not source_runs:
        return SettleOutcome(Settlement.MOVED, "succeeded",
                             f"settled after a manager restart: VM {row.vm} runs on {dst}")
    if source_runs and not dest_runs:
        return SettleOutcome(Settlement.STAYED, "failed",
                             f"settled after a manager restart: VM {row.vm} still runs on {src}; it did not move")
    if source_runs and dest_runs:
        return SettleOutcome(Settlement.TWICE, "failed",
                             f"settled after a manager restart: VM {row.vm} runs on both {src} and {dst}; "
                             "its record is left as it was (see the audit's vm-state finding)")
    return SettleOutcome(Settlement.LOST, "failed",
                         f"settled after a manager restart: VM {row.vm} runs on neither {src} nor {dst}; "
                         "its record is left as it was (see the audit's vm-state finding)")
