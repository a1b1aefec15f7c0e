"""The management bridge takes over the NIC's addresses and routes, or leaves the host untouched.

SetupManagementNetwork is a request completed from the host's state and run
through the agent's one setupNetworks pipeline (HostNetworks.setup_management).
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from pyroute2 import IPRoute

from agent.net.apply.transaction import ApplyFailed, SimulatedCrash, recover_from_journal
from agent.net.hostnet.apply import SetupResult
from agent.net.hostnet.changes import HostNetworks
from agent.net.report.capabilities import kernel_features
from agent.net.report.state import read_state
from tests.fixtures.netns import Namespace, without_lifetimes
from virtfleet.errors import FailedPrecondition, InvalidArgument

pytestmark = pytest.mark.lab


class Host:
    """A lab host: eth0 is a veth whose other end is a port of a switch in another namespace."""

    def __init__(self, ns: Namespace, switch: Namespace, ipr: IPRoute, state_dir: pathlib.Path) -> None:
        self.ns, self.switch, self.ipr = ns, switch, ipr
        self.journal = state_dir / "net.journal"
        self.networks = HostNetworks(ipr, threading.Lock(), journal_path=self.journal,
                                     config_path=state_dir / "netconfig.json", features=lambda: kernel_features(ipr))

    def setup(self, nic: str = "eth0", bridge: str = "ovirtmgmt", **options: Any) -> SetupResult:
        """What the SetupManagementNetwork RPC runs."""
        return self.networks.setup_management(nic, bridge, **options)

    def observed(self) -> dict[str, Any]:
        """The host as iproute2 and read_state see it, minus what ticks by itself."""
        self.ns.settle()
        state = MessageToDict(read_state(self.ipr))
        state.pop("takenAt")
        for link in state["links"]:
            for address in link.get("addresses", []):
                address.pop("validLft", None)
                address.pop("preferredLft", None)
        return {
            "ip addr": without_lifetimes(self.ns.ip("addr", "show")),
            "ip route": self.ns.ip("route", "show", "table", "main"),
            "ip -6 route": self.ns.ip("-6", "route", "show", "table", "main"),
            "bridge link": self.ns.bridge_json("link", "show"),
            "read_state": state,
        }


@pytest.fixture
def host(netns_factory: Any, tmp_path: pathlib.Path) -> Iterator[Host]:
    ns, switch = netns_factory(), netns_factory()
    switch.ip("link", "add", "sw", "type", "bridge")
    ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "uplink0", "netns", switch.name)
    switch.ip("link", "set", "uplink0", "master", "sw", "up")
    switch.ip("link", "set", "sw", "up")
    switch.ip("addr", "add", "192.0.2.1/24", "dev", "sw")
    ns.ip("link", "set", "eth0", "mtu", "1450", "up")
    ns.ip("addr", "add", "192.0.2.11/24", "brd", "+", "dev", "eth0")
    ns.ip("addr", "add", "192.0.2.12/24", "dev", "eth0", "label", "eth0:sec")
    ns.ip("addr", "add", "10.7.0.11/16", "dev", "eth0", "noprefixroute", "valid_lft", "900", "preferred_lft", "600")
    ns.ip("route", "add", "default", "via", "192.0.2.1")
    ns.ip("route", "add", "198.51.100.0/24", "via", "192.0.2.1", "metric", "5", "proto", "static")
    ns.ip("route", "add", "203.0.113.0/24", "dev", "eth0", "proto", "static")
    with ns.iproute() as ipr:
        yield Host(ns, switch, ipr, tmp_path)


def test_management_network_moves_address_onto_bridge(host: Host) -> None:
    mac = host.ns.ip_json("link", "show", "eth0")[0]["address"]

    result = host.setup("eth0")

    assert result.changed
    assert result.steps[0] == f"ip link add ovirtmgmt address {mac} mtu 1450 type bridge stp_state 0"
    links = {j["ifname"]: j for j in host.ns.ip_json("addr", "show")}
    bridge, nic = links["ovirtmgmt"], links["eth0"]
    assert [
        (a["local"], a["prefixlen"], a.get("broadcast"), a["label"], a.get("noprefixroute", False))
        for a in bridge["addr_info"]
        if a["family"] == "inet"
    ] == [  # in the kernel's order on eth0: primaries, then secondaries
        ("192.0.2.11", 24, "192.0.2.255", "ovirtmgmt", False),
        ("10.7.0.11", 16, None, "ovirtmgmt", True),
        ("192.0.2.12", 24, None, "ovirtmgmt:sec", False),
    ]
    assert next(a for a in bridge["addr_info"] if a["local"] == "10.7.0.11")["valid_life_time"] <= 900
    assert [a for a in nic["addr_info"] if a["family"] == "inet"] == []
    assert (bridge["address"], bridge["mtu"], "UP" in bridge["flags"]) == (mac, 1450, True)
    assert [(p["ifname"], p["master"]) for p in host.ns.bridge_json("link", "show")] == [("eth0", "ovirtmgmt")]
    stp = host.ns.ip_json("-d", "link", "show", "ovirtmgmt")[0]["linkinfo"]["info_data"]["stp_state"]
    assert stp == 0
    assert host.ns.ip("route", "show", "table", "main").splitlines() == [
        "default via 192.0.2.1 dev ovirtmgmt ",
        "192.0.2.0/24 dev ovirtmgmt proto kernel scope link src 192.0.2.11 ",
        "198.51.100.0/24 via 192.0.2.1 dev ovirtmgmt proto static metric 5 ",
        "203.0.113.0/24 dev ovirtmgmt proto static scope link ",
    ]
    assert not host.journal.exists()
    assert [link.name for link in result.state.links if link.master == "ovirtmgmt"] == ["eth0"]


def test_second_setup_changes_nothing(host: Host) -> None:
    host.setup("eth0")
    before = host.observed()

    again = host.setup("eth0")

    assert (again.changed, again.steps) == (False, [])
    assert host.observed() == before


def test_dry_run_lists_the_steps_and_changes_nothing(host: Host) -> None:
    before = host.observed()

    dry = host.setup("eth0", dry_run=True)

    assert not dry.changed
    assert host.observed() == before
    assert dry.steps == host.setup("eth0").steps


@pytest.mark.parametrize("bad", ["", "eth0/1", "eth 0", "eth0:1", "e" * 16, "é" * 8, "..", "eth0\n"])
def test_bad_nic_name_is_invalid_argument_naming_the_field(host: Host, bad: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        host.setup(bad)
    assert raised.value.field == "nic"


def test_unknown_nic_is_invalid_argument(host: Host) -> None:
    with pytest.raises(InvalidArgument) as raised:
        host.setup("eth9")
    assert (raised.value.field, "eth9" in raised.value.message) == ("nic", True)


def test_bad_bridge_name_is_invalid_argument_naming_the_field(host: Host) -> None:
    with pytest.raises(InvalidArgument) as raised:
        host.setup("eth0", "ovirt mgmt")
    assert raised.value.field == "bridge"


def test_nic_enslaved_to_another_bridge_is_failed_precondition(host: Host) -> None:
    host.ns.ip("link", "add", "other", "type", "bridge")
    host.ns.ip("link", "set", "eth0", "master", "other")
    before = host.observed()

    with pytest.raises(FailedPrecondition, match="other"):
        host.setup("eth0")
    assert host.observed() == before


def test_bridge_name_taken_by_another_kind_is_failed_precondition(host: Host) -> None:
    host.ns.ip("link", "add", "ovirtmgmt", "type", "veth", "peer", "name", "x1")
    with pytest.raises(FailedPrecondition, match="not a bridge"):
        host.setup("eth0")


def test_failure_at_every_step_restores_previous_state(host: Host) -> None:
    before = host.observed()
    steps = host.setup("eth0", dry_run=True).steps
    assert len(steps) >= 8

    for index, step in enumerate(steps):
        with pytest.raises(ApplyFailed, match="rolled back") as raised:
            host.setup("eth0", fail_at=index)
        # the step names the failed change; an address's remaining lifetime may have ticked meanwhile
        assert without_lifetimes(step) in without_lifetimes(raised.value.message)
        assert host.observed() == before, f"after a failure at step {index}: {step}"
        assert not host.journal.exists()


def test_existing_bridge_is_adjusted_and_restored_on_failure(host: Host) -> None:
    host.ns.ip("link", "add", "ovirtmgmt", "address", "02:00:00:00:00:99", "mtu", "1400", "type", "bridge", "stp_state", "1")
    # A bridge never up shows qdisc noop; the first `up` attaches noqueue for good, which no
    # netlink call undoes. Start from a bridge that has been up before, as any used one has.
    host.ns.ip("link", "set", "ovirtmgmt", "up")
    host.ns.ip("link", "set", "ovirtmgmt", "down")
    before = host.observed()
    steps = host.setup("eth0", dry_run=True).steps
    assert steps[:3] == [
        "ip link set ovirtmgmt type bridge stp_state 0",
        f"ip link set ovirtmgmt address {host.ns.ip_json('link', 'show', 'eth0')[0]['address']}",
        "ip link set ovirtmgmt mtu 1450",
    ]

    for index in range(len(steps)):
        with pytest.raises(ApplyFailed):
            host.setup("eth0", fail_at=index)
        assert host.observed() == before, f"after a failure at step {index}: {steps[index]}"

    assert host.setup("eth0").changed


def test_journal_recovery_after_a_crash_at_every_step(host: Host) -> None:
    before = host.observed()
    steps = host.setup("eth0", dry_run=True).steps

    for index in range(len(steps) + 1):  # the last one dies after all steps, before verifying
        with pytest.raises(SimulatedCrash):
            host.setup("eth0", crash_at=index)
        assert host.journal.exists()

        assert recover_from_journal(host.ipr, host.journal)

        assert host.observed() == before, f"after a crash before step {index}"
        assert not host.journal.exists()


def test_recovery_without_a_journal_does_nothing(host: Host) -> None:
    before = host.observed()
    assert not recover_from_journal(host.ipr, host.journal)
    assert host.observed() == before
