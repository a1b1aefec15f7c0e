"""An agent's refusal reaches the admin as the agent meant it: the same status, the field of the admin's request.

A real manager and a real agent process in a host namespace of its own (three
NICs plugged into a switch namespace), enrolled through the fleet API like any
host; the requests are ones the manager passes on because only the host can
judge them (its NICs, its kernel, bonding under a VM bridge).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from manager.service.networks import admin_field
from tests.fixtures.agent_process import enrolled_agent
from tests.fixtures.netns import plug_nics
from virtfleet.rpc import field_violations
from virtfleet.v1 import agent_pb2, fleet_pb2, hostnet_pb2

CLI = str(Path(sys.executable).with_name("virtfleet"))


@pytest.mark.parametrize("agent_field, admin", [
    ("networks[1].nic", "attach[1].nic"),
    ("networks[0].ipv4.gateway", "attach[0].ipv4.gateway"),
    ("networks[2].vlan", "attach[2].network"),      # the VLAN comes with the network the admin chose
    ("remove_networks[0]", "detach[0]"),
    ("bonds[0].mode", "bonds[0].mode"),
    ("remove_bonds[1]", "remove_bonds[1]"),
    ("bond bond0 (running).slaves", "bond bond0 (running).slaves"),
])
def test_agent_fields_are_named_as_the_admins_request_names_them(agent_field, admin):
    assert admin_field(agent_field) == admin


@pytest.fixture
def host(manager, netns_factory) -> Iterator[str]:
    """host1, enrolled, its agent serving; yields the host's name."""
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 3)
    with enrolled_agent(manager, ns.name):
        yield "host1"


def _setup(manager, **request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", **request), timeout=60)
    return err.value


def test_a_bond_mode_refused_by_the_agent_reaches_the_cli_with_its_field(manager, host):
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    done = subprocess.run([CLI, "--manager", manager.target, "host", "setup-networks", host,
                           "--bond", "bond0=eth1,eth2:mode=5", "--attach", "vmnet=bond0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "error: INVALID_ARGUMENT" in done.stderr
    assert "field bonds[0].mode: " in done.stderr and "active-backup" in done.stderr, done.stderr


def test_a_nic_the_host_lacks_is_named_by_the_admins_attach_field(manager, host):
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="display")))
    err = _setup(manager, attach=[fleet_pb2.HostAttachment(network="vmnet", nic="eth1"),
                                  fleet_pb2.HostAttachment(network="display", nic="eth9")])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(err)
    assert field == "attach[1].nic" and "eth9" in description
    view = manager.fleet.GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host=host))
    assert list(view.networks) == []


def test_what_this_kernel_cannot_build_stays_a_failed_precondition_naming_the_host(manager, host):
    reply = manager.app.agents.call(host, manager.app.hosts.get(host).endpoint,
                                    lambda s, t: s.GetCapabilities(agent_pb2.GetCapabilitiesRequest(), timeout=t))
    if "bond" in reply.kernel_features:
        pytest.skip("this kernel has bonding: the refusal cannot be shown here")
    err = _setup(manager, bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth1", "eth2"], mode="1")])
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("host host1: ") and "bonding" in err.details()
