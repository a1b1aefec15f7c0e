"""setupNetworks on the kernel: validate, read, plan, apply in one journaled transaction, verify.

Shaped like nmstate's apply. The state is read once before (for validation,
planning and the transaction's snapshot) and once after (verification and the
reply): per-step re-reads would make hundreds of networks slow. The
management network comes through here too, as a request completed by
canonicalize.management whose bridge takes over its NIC.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.net import crashpoints
from agent.net.apply import batch, journal, operations, snapshot, transaction
from agent.net.apply.transaction import ApplyFailed
from agent.net.hostnet.model import BridgeSpec, Devices, devices
from agent.net.hostnet.plan import Originals, plan, port_mac
from agent.net.hostnet.validation import validate
from agent.net.report.state import read_state
from virtfleet import failpoints
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
    takeover: Iterable[str] = (),
    current: netstate_pb2.NetworkState | None = None,
    fail_at: int | None = None,
    crash_at: int | None = None,
    generation: int | None = None,
    save: Callable[[hostnet_pb2.HostNetworkConfig, Originals], None] | None = None,
) -> SetupResult:
    """Change the host from `running` by `request`; on failure the host is as it was (ApplyFailed).

    A dry run, or a request the host already satisfies, changes nothing
    (`changed=False`). `keep_journal` leaves the change undoable until
    confirmed (two-phase). `takeover` names bridges that take over their port
    (the management network); `current` is the state the caller completed the
    request from, read just now. `fail_at`/`crash_at` are fault-injection seams.
    `save` stores the new configuration once the change is verified and before
    its journal goes, under `generation` (which the journal names): the commit
    point that decides, after a crash, between before and after.
    """
    current = current if current is not None else read_state(ipr)
    config = validate(request, running, current, features)
    old, new = devices(running), devices(config, takeover)
    steps = plan(current, old, new, originals)
    if request.dry_run:
        return SetupResult(False, steps.describe(), current, running, originals)
    if not steps.steps:
        return SetupResult(False, [], current, config, steps.originals)
    after: list[netstate_pb2.NetworkState] = []

    def check() -> list[str]:
        after.append(read_state(ipr))
        return verify(after[-1], config, old, new) + verify_takeovers(current, after[-1], new)

    finish = (lambda: save(config, steps.originals)) if save is not None else None
    if request.no_rollback:
        previous = snapshot.take(current, sorted(steps.touched))
        _apply_without_rollback(ipr, steps.steps, check, previous=previous, journal_path=journal_path,
                                generation=generation, finish=finish, keep_journal=keep_journal)
    else:
        writer = batch.for_socket(ipr, {link.name: link.index for link in current.links})
        try:
            transaction.execute(
                ipr, steps.steps, touched=sorted(steps.touched), verify=check, journal_path=journal_path,
                fail_at=fail_at, crash_at=crash_at, current=current, keep_journal=keep_journal, run=writer.run,
                generation=generation, finish=finish,
            )
        finally:
            writer.close()
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


def verify_takeovers(before: netstate_pb2.NetworkState, after: netstate_pb2.NetworkState, new: Devices) -> list[str]:
    """A bridge that took over its port holds the port's MAC, addresses and routes; the port holds no IPv4 address."""
    lines: list[str] = []
    for bridge in new.bridges.values():
        if bridge.takeover:
            lines += _verify_takeover(bridge, before, after, new)
    return lines


def _verify_takeover(bridge: BridgeSpec, before: netstate_pb2.NetworkState, after: netstate_pb2.NetworkState,
                     new: Devices) -> list[str]:
    was = {link.name: link for link in before.links}
    now = {link.name: link for link in after.links}
    top, port = now.get(bridge.name), now.get(bridge.port)
    if top is None or port is None:
        return []  # netcompare reports the missing device
    lines = []
    mac = port_mac(was, bridge.port, new)
    if mac and top.mac != mac:
        lines.append(f"{bridge.name} mac: expected {mac}, found {top.mac}")
    if top.bridge.stp_enabled:
        lines.append(f"{bridge.name} stp: expected off, found on")
    held = [a for a in port.addresses if a.family == "inet"]
    if held:
        lines.append(f"{bridge.port} IPv4 addresses: expected none, found {', '.join(a.address for a in held)}")
    present = {(a.address, a.prefixlen) for a in top.addresses}
    moved = [a for a in was[bridge.port].addresses if a.family == "inet"] if bridge.port in was else []
    lines += [f"{bridge.name}: missing address {a.address}/{a.prefixlen}"
              for a in moved if (a.address, a.prefixlen) not in present]
    routes = {(r.destination, r.gateway, r.metric) for r in after.routes if r.device == bridge.name}
    lines += [f"{bridge.name}: missing route {r.destination} via {r.gateway or 'link'} metric {r.metric}"
              for r in before.routes
              if r.device == bridge.port and r.family == "inet" and r.protocol != "kernel"
              and (r.destination, r.gateway, r.metric) not in routes]
    return lines


def _apply_without_rollback(ipr: IPRoute, steps, check, *, previous: snapshot.Snapshot,
                            journal_path: pathlib.Path | None, generation: int | None,
                            finish: Callable[[], None] | None, keep_journal: bool) -> None:
    """The admin asked to keep a failed change as it is (for diagnosis): no undo on a refusal.

    A crash is not a refusal: the journal is written all the same, so until the
    change is saved a restarted agent undoes it. A refused step drops the
    journal and leaves the host as it is, unsaved, as asked.
    """
    if journal_path is not None:
        journal.write(journal_path, previous, steps, generation)
    for done, step in enumerate(steps):
        try:
            operations.apply(ipr, step.do)
        except NetlinkError as error:
            journal.remove(journal_path)
            raise ApplyFailed(f"`{step.describe()}` failed ({error}); the host was left as it is (no_rollback)") from error
        crashpoints.progress(done, done + 1, len(steps))
    failpoints.hit(crashpoints.KERNEL_ALL)
    differences = check()
    if differences:
        journal.remove(journal_path)
        raise ApplyFailed("the host did not reach the requested state (no_rollback: left as it is)", "\n".join(differences))
    if keep_journal:
        return  # two-phase: the commit saves and drops it, the timer undoes it
    if finish is not None:
        finish()
    journal.remove(journal_path)
