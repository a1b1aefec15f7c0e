"""The transaction journal on disk, and the one durable write every agent file goes through.

A journal holds what the touched links were like before a change and the undo
of every step, so a restarted agent can put the host back however far the
dead one got. It and the saved host network configuration
(agent.net.hostnet.persistence) are written the same way: a temporary file,
fsync, rename over the old one, fsync of the directory — a crash leaves the
old file or the new one, never half of either, and a removal survives a crash
too.

A change that ends in a new saved configuration records in its journal the
generation that configuration will have (`generation`). Saving it is the
commit point: the configuration is written before the journal is removed, and
a restarted agent that finds a journal whose generation is already saved
knows the change was verified and kept, and drops the journal instead of
undoing it (agent.net.hostnet.changes). A journal without a generation (the
restore at start) is always undone.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.net import crashpoints
from agent.net.apply import operations
from agent.net.apply.operations import Step
from agent.net.apply.snapshot import Snapshot
from virtfleet import failpoints
from virtfleet.errors import FailedPrecondition

VERSION = 1


@dataclass(frozen=True)
class Entry:
    """An unfinished change: the touched links before it, and its steps in order."""

    previous: Snapshot
    steps: list[Step]
    generation: int | None = None  # the saved configuration's generation that makes the change final


def write(path: pathlib.Path, previous: Snapshot, steps: Sequence[Step], generation: int | None = None) -> None:
    entry: dict[str, Any] = {
        "version": VERSION,
        "generation": generation,
        "previous": previous,
        "steps": [
            {"describe": s.describe(), "do": operations.to_json(s.do), "undo": operations.to_json(s.undo)} for s in steps
        ],
    }
    write_atomic(path, json.dumps(entry))  # one C-encoded string: indenting runs the pure-Python encoder, slow at 1000s of steps
    failpoints.hit(crashpoints.JOURNAL_WRITTEN)


def read(path: pathlib.Path) -> Entry | None:
    """The journal a dead agent left behind, or None when there is none."""
    try:
        entry = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if entry.get("version") != VERSION:
        raise FailedPrecondition(f"journal {path} has unknown version {entry.get('version')!r}; left in place")
    steps = [Step(operations.from_json(s["do"]), operations.from_json(s["undo"])) for s in entry["steps"]]
    return Entry(entry["previous"], steps, entry.get("generation"))


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Replace `path` with `text`, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)
    _fsync_dir(path.parent)


def remove(path: pathlib.Path | None) -> None:
    """Remove a file for good (a finished or confirmed change's journal)."""
    if path is not None:
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        failpoints.hit(crashpoints.JOURNAL_REMOVED)


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
