"""One host network change at a time: applied, pending confirmation, committed or rolled back.

setupNetworks and SetupManagementNetwork both come through here, into the one
pipeline (hostnet.apply) and the one journal, so neither can overwrite a change
the other left pending.

With a connectivity timeout the change stays pending: its journal stays on
disk and a timer rolls it back unless CommitNetworks arrives first — the
manager reaching the agent again over a fresh call is the proof the host is
still reachable. An agent killed while a change is pending finds the journal
at its next start and rolls it back before anything else (agent.main), then
restores the last committed configuration (`restore`).

The commit point of every change is the save of its configuration (with the
next `generation`), which comes after the kernel reached and verified the new
state and before the journal goes. So a SIGKILL anywhere leaves one of:
journal and old configuration (recovery undoes the change: before), journal
and new configuration (recovery keeps it and drops the journal: after), or no
journal (the saved configuration is what the kernel has). The same order holds
for one-phase changes, CommitNetworks, the management network and a change
the kernel already satisfies; the rollback timer and the restore at start save
nothing. The generation goes out in GetNetworkConfig and in every state
stream event, for the manager to notice a change whose reply it lost.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute

from agent.net.apply import journal
from agent.net.apply.transaction import recover_from_journal
from agent.net.hostnet import canonicalize, persistence
from agent.net.hostnet.apply import SetupResult, setup_networks
from agent.net.report.capabilities import kernel_features
from agent.net.report.state import read_state
from virtfleet.errors import FailedPrecondition, InvalidArgument, VirtfleetError
from virtfleet.v1 import hostnet_pb2

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    change_id: str
    config: hostnet_pb2.HostNetworkConfig
    originals: persistence.Originals
    generation: int  # what its journal names; the commit saves exactly this one
    timer: threading.Timer


class HostNetworks:
    """The running configuration of this host and the change, if any, that awaits its commit."""

    def __init__(self, ipr: IPRoute, lock: threading.Lock | threading.RLock, *, journal_path: pathlib.Path,
                 config_path: pathlib.Path, features: Callable[[], Iterable[str]]) -> None:
        self._ipr, self._lock = ipr, lock
        self._journal_path, self._config_path = journal_path, config_path
        self._features = features
        self._saved = persistence.load(config_path)
        self._pending: _Pending | None = None

    @property
    def config(self) -> hostnet_pb2.HostNetworkConfig:
        with self._lock:
            return self._saved.config

    @property
    def generation(self) -> int:
        """The saved configuration's generation; read without the lock (one attribute read) for the state stream."""
        return self._saved.generation

    def setup(self, request: hostnet_pb2.SetupNetworksRequest, **seams: int) -> hostnet_pb2.SetupNetworksResponse:
        with self._lock:
            self._refuse_if_pending()
            two_phase = request.connectivity_timeout_s > 0 and not request.dry_run
            generation = self._saved.generation + 1
            result = setup_networks(
                self._ipr, request, self._saved.config, self._saved.originals, features=self._features(),
                journal_path=self._journal_path, keep_journal=two_phase, generation=generation,
                save=None if two_phase or request.dry_run else self._save, **seams,
            )
            response = hostnet_pb2.SetupNetworksResponse(steps=result.steps, state=result.state, config=result.config)
            if two_phase and result.changed:
                response.change_id = self._hold(result, generation, request.connectivity_timeout_s)
            elif not request.dry_run:
                self._record(result)
                response.config.CopyFrom(self._saved.config)
            return response

    def setup_management(self, nic: str, bridge: str, *, dry_run: bool = False, **seams: int) -> SetupResult:
        """`bridge` becomes the management network on `nic`, taking over the NIC's MAC, addresses and routes.

        Completed from the host's state into a setupNetworks request
        (canonicalize.management) and applied like one, so it is saved with
        the other networks. Idempotent: a host that has it gets no steps and
        `changed=False`; a dry run returns the steps and changes nothing.
        """
        with self._lock:
            self._refuse_if_pending()
            current = read_state(self._ipr)
            management = canonicalize.management(current, nic, bridge, dry_run=dry_run)
            try:
                result = setup_networks(
                    self._ipr, management.request, self._saved.config, self._saved.originals,
                    features=self._features(), journal_path=self._journal_path, takeover=[management.bridge],
                    current=current, generation=self._saved.generation + 1,
                    save=None if dry_run else self._save, **seams,
                )
            except InvalidArgument as error:
                raise canonicalize.management_error(error) from None
            if not dry_run:
                self._record(result)
            return result

    def commit(self, change_id: str) -> hostnet_pb2.HostNetworkConfig:
        with self._lock:
            pending = self._pending
            if pending is None or pending.change_id != change_id:
                raise FailedPrecondition(f"no network change {change_id!r} awaits a commit "
                                         "(already committed, or rolled back after its connectivity timeout)")
            pending.timer.cancel()
            self._pending = None
            assert pending.generation == self._saved.generation + 1, "a change was saved while another was pending"
            self._save(pending.config, pending.originals)  # the commit point: the journal goes after it
            journal.remove(self._journal_path)
            log.info("network change %s committed", change_id)
            return self._saved.config

    def restore(self) -> SetupResult | None:
        """Put the committed configuration back onto the kernel (agent start, like VDSM's restore-nets)."""
        with self._lock:
            if not self._saved.config.networks and not self._saved.config.bonds:
                return None
            result = setup_networks(self._ipr, hostnet_pb2.SetupNetworksRequest(), self._saved.config,
                                    self._saved.originals, features=self._features(), journal_path=self._journal_path)
            if result.changed:
                log.warning("restored saved host networks: %d steps", len(result.steps))
            return result

    def cancel_timers(self) -> None:
        """At shutdown: the journal stays, so the next start rolls the pending change back."""
        with self._lock:
            if self._pending is not None:
                self._pending.timer.cancel()

    def _hold(self, result: SetupResult, generation: int, timeout_s: int) -> str:
        change_id = uuid.uuid4().hex
        timer = threading.Timer(timeout_s, self._expire, args=(change_id,))
        timer.daemon = True
        self._pending = _Pending(change_id, result.config, result.originals, generation, timer)
        timer.start()
        log.info("network change %s pending; rolled back unless committed within %d s", change_id, timeout_s)
        return change_id

    def _expire(self, change_id: str) -> None:
        with self._lock:
            if self._pending is None or self._pending.change_id != change_id:
                return  # committed meanwhile
            self._pending = None
            try:
                recover_from_journal(self._ipr, self._journal_path, saved_generation=self._saved.generation)
                log.warning("network change %s not committed in time: rolled back", change_id)
            except VirtfleetError:
                log.exception("rolling back network change %s failed; journal kept", change_id)

    def _refuse_if_pending(self) -> None:
        """A change awaiting its commit owns the journal: the next one waits for the commit or the rollback."""
        if self._pending is not None:
            raise FailedPrecondition(f"network change {self._pending.change_id} awaits CommitNetworks; "
                                     "commit it or wait for its automatic rollback")

    def _record(self, result: SetupResult) -> None:
        """A change the kernel already satisfied may still change the configuration (no journal: saving is all).

        A change that reached the kernel was saved by `setup_networks` before its journal went.
        """
        if not result.changed and _unstamped(result.config) != _unstamped(self._saved.config):
            self._save(result.config, result.originals)

    def _save(self, config: hostnet_pb2.HostNetworkConfig, originals: persistence.Originals) -> None:
        """The commit point: `config` saved as the next generation (the one the change's journal names)."""
        stamped = _unstamped(config)
        stamped.generation = self._saved.generation + 1
        saved = persistence.Saved(stamped, originals)
        persistence.save(self._config_path, saved)
        self._saved = saved


def _unstamped(config: hostnet_pb2.HostNetworkConfig) -> hostnet_pb2.HostNetworkConfig:
    copy = hostnet_pb2.HostNetworkConfig()
    copy.CopyFrom(config)
    copy.ClearField("generation")
    return copy


def recover_at_start(ipr: IPRoute, *, journal_path: pathlib.Path, config_path: pathlib.Path) -> bool:
    """At agent start, first of all: finish what a dead agent left; True if a change was undone.

    A journal whose change was saved is dropped (the host keeps the after-state
    the saved configuration describes); any other is undone (before-state).
    ApplyFailed, with the journal kept, if the undo did not bring the host back.
    """
    return recover_from_journal(ipr, journal_path, saved_generation=persistence.load(config_path).generation)


def restore_saved(ipr: IPRoute, *, journal_path: pathlib.Path, config_path: pathlib.Path) -> SetupResult | None:
    """At agent start, after recovery and before the server binds: a client that can connect sees the restored host."""
    networks = HostNetworks(ipr, threading.Lock(), journal_path=journal_path, config_path=config_path,
                            features=lambda: kernel_features(ipr))
    return networks.restore()
