"""Writing what the monitor learnt to PostgreSQL, batched, so reports survive the manager.

The database gets the newest report of each changed host in one transaction
per flush, however many events arrived in between, so the CLI can read them;
hosts that only heartbeated move just their last-report time, and hosts gone
silent are marked unreachable in the same transaction.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from google.protobuf.json_format import MessageToDict
from psycopg_pool import ConnectionPool

from virtfleet.errors import Unavailable

from ..store import hosts as host_store
from .states import HostState, HostStates

log = logging.getLogger(__name__)


class ReportWriter:
    def __init__(self, pool: ConnectionPool, states: HostStates, still_unreachable: Callable[[str], bool],
                 interval_s: float) -> None:
        self._pool = pool
        self._states = states
        self._still_unreachable = still_unreachable
        self._interval_s = interval_s
        self._news: set[str] = set()          # new state to write
        self._heard: set[str] = set()         # reported (a heartbeat is enough): last_report_at to move on
        self._unreachable: set[str] = set()   # silent past the limit, not yet marked so in the database

    def note(self, name: str, news: bool) -> None:
        """A host reported: its state (news) or only its being alive is to be written."""
        (self._news if news else self._heard).add(name)
        self._unreachable.discard(name)

    def unreachable(self, name: str) -> None:
        self._unreachable.add(name)

    def forget(self, name: str) -> None:
        self._news.discard(name)
        self._heard.discard(name)
        self._unreachable.discard(name)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Unavailable:  # the database is away (its pool logs that once); the states wait in memory
                pass
            except Exception:  # nor may anything else stop the monitor
                log.exception("could not write host reports; will retry")

    async def flush(self) -> None:
        names, self._news = self._news, set()
        heard_names, self._heard = self._heard - names, set()
        held = [h for h in map(self._states.current, names) if h is not None]
        heard = [(h.name, h.reported_at) for h in map(self._states.current, heard_names) if h is not None]
        gone, self._unreachable = sorted(self._unreachable), set()
        if not held and not heard and not gone:
            return
        try:
            await asyncio.to_thread(self._write, held, heard, gone)
        except Exception:
            self._news |= {h.name for h in held}
            self._unreachable |= {name for name in gone if self._still_unreachable(name)}
            raise

    def _write(self, held: list[HostState], heard: list[tuple[str, dt.datetime]], unreachable: list[str]) -> None:
        """One transaction for the whole batch; the JSON form is made here, off the loop."""
        rows = [host_store.ReportRecord(h.name, h.sequence, h.reported_at,
                                        MessageToDict(h.state, preserving_proto_field_name=True)) for h in held]
        with self._pool.connection() as conn:
            with conn.transaction():
                host_store.save_reports(conn, rows)
                host_store.mark_heard(conn, heard)
                host_store.mark_unreachable(conn, unreachable)
