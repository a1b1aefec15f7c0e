"""setupNetworks on the kernel: validate, read, plan, apply in one journaled transaction, verify.

Shaped like nmstate's apply. The state is read once before (for validation,
planning and the transaction's snapshot) and once after (verification and the
reply): per-step re-reads would make hundreds of networks slow.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net import netlink_batch, operations, transaction
from agent.net.errors import ApplyFailed
from agent.net.hostnet.model import Devices, devices
from agent.net.hostnet.plan import Originals, plan
from agent.net.hostnet.validation import validate
from agent.net.state import read_state
from virtfleet.hostnet import netcompare
from virtfleet.v1 import hostnet_pb2, netstate_pb2


@dataclass(frozen=True)
class SetupResult:
    changed: bool
    steps: list[str]
    state: netstate_pb2.NetworkState
    config: hostnet_pb2.HostNetworkConfig  # the running configuration after the call
    originals: Originals


def setup_networks(
    ipr: IPRoute,
    request: hostnet_pb2.SetupNetworksRequest,
    running: hostnet_pb2.HostNetworkConfig,
    originals: Originals,
    *,
    features: Iterable[str],
    journal_path: pathlib.Path | None = None,
    keep_journal: bool = False,
    fail_at: int | None = None,
    crash_at: int | None = None,
) -> SetupResult:
    """Change the host from `running` by `request`; on failure the host is as it was (ApplyFailed).

    A dry run, or a request the host already satisfies, changes nothing
    (`changed=False`). `keep_journal` leaves the change undoable until
    confirmed (two-phase). `fail_at`/`crash_at` are fault-injection seams.
    """
    current = read_state(ipr)
    config = validate(request, running, current, features)
    old, new = devices(running), devices(config)
    steps = plan(current, old, new, originals)
    if request.dry_run:
        return SetupResult(False, steps.describe(), current, running, originals)
    if not steps.steps:
        return SetupResult(False, [], current, config, steps.originals)
    after: list[netstate_pb2.NetworkState] = []

    def check() -> list[str]:
        after.append(read_state(ipr))
        return verify(after[-1], config, old, new)

    if request.no_rollback:
        _apply_without_rollback(ipr, steps.steps, check)
    else:
        batch = netlink_batch.for_socket(ipr, {link.name: link.index for link in current.links})
        try:
            transaction.execute(
                ipr, steps.steps, touched=sorted(steps.touched), verify=check, journal_path=journal_path,
                fail_at=fail_at, crash_at=crash_at, current=current, keep_journal=keep_journal, run=batch.run,
            )
        finally:
            batch.close()
    return SetupResult(True, steps.describe(), after[-1], config, steps.originals)


def verify(state: netstate_pb2.NetworkState, config: hostnet_pb2.HostNetworkConfig, old: Devices, new: Devices) -> list[str]:
    """Desired ⊆ current after normalising (netcompare), and what was removed is gone."""
    lines = []
    links = {link.name: link for link in state.links}
    for att in config.networks:
        lines += [f"network {att.network}: {f.field}: expected {f.expected}, found {f.found}"
                  for f in netcompare.compare_attachment(att, state, links)]
    for bond in config.bonds:
        lines += [f"bond {bond.name}: {f.field}: expected {f.expected}, found {f.found}"
                  for f in netcompare.compare_bond(bond, state)]
    present = {link.name for link in state.links}
    for name in sorted((set(old.bridges) | set(old.vlans) | set(old.bonds)) - set(new.bridges) - set(new.vlans) - set(new.bonds)):
        if name in present:
            lines.append(f"{name}: expected absent, found present")
    return lines


def _apply_without_rollback(ipr: IPRoute, steps, check) -> None:
    """The admin asked to keep a failed change as it is (for diagnosis): no journal, no undo."""
    for step in steps:
        try:
            operations.apply(ipr, step.do)
        except NetlinkError as error:
            raise ApplyFailed(f"`{step.describe()}` failed ({error}); the host was left as it is (no_rollback)") from error
    differences = check()
    if differences:
        raise ApplyFailed("the host did not reach the requested state (no_rollback: left as it is)", "\n".join(differences))
