"""Logical networks through the fleet API: definitions, bad input, and what the database keeps."""
from __future__ import annotations

import grpc
import psycopg
import pytest

from virtfleet.rpc import field_violations
from virtfleet.enroll import make_key_and_csr
from virtfleet.v1 import fleet_pb2


def _create(manager, name="vmnet", **kw):
    no_vm = kw.pop("no_vm_network", False)
    return manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(
        network=fleet_pb2.LogicalNetwork(name=name, **kw), no_vm_network=no_vm))


def _network_rows(manager):
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return conn.execute("SELECT name, vlan, mtu, vm_network FROM networks ORDER BY name").fetchall()


def test_management_network_exists_from_the_start(manager):
    nets = manager.fleet.ListNetworks(fleet_pb2.ListNetworksRequest()).networks
    assert [(n.name, n.vm_network, n.mtu, n.vlan) for n in nets] == [("ovirtmgmt", True, 1500, 0)]


def test_created_networks_are_listed_with_their_settings(manager):
    _create(manager, "storage", vlan=100, mtu=9000, no_vm_network=True, description="iSCSI")
    made = _create(manager, "vmnet")
    assert (made.vm_network, made.mtu, made.vlan, made.datacenter) == (True, 1500, 0, "Default")
    shown = manager.fleet.GetNetwork(fleet_pb2.GetNetworkRequest(name="storage"))
    assert (shown.vlan, shown.mtu, shown.vm_network, shown.description) == (100, 9000, False, "iSCSI")
    assert [n.name for n in manager.fleet.ListNetworks(fleet_pb2.ListNetworksRequest()).networks] == \
        ["ovirtmgmt", "storage", "vmnet"]


@pytest.mark.parametrize("field, kwargs", [
    ("network.name", {"name": "a-very-long-network"}),
    ("network.name", {"name": "has space"}),
    ("network.name", {"name": "a/b"}),
    ("network.name", {"name": "a:b"}),
    ("network.name", {"name": ""}),
    ("network.vlan", {"vlan": 4095}),
    ("network.mtu", {"mtu": 67}),
    ("network.mtu", {"mtu": 70000}),
])
def test_bad_network_definition_names_the_field_and_changes_nothing(manager, field, kwargs):
    before = _network_rows(manager)
    with pytest.raises(grpc.RpcError) as err:
        _create(manager, **{"name": "net1", **kwargs})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == [field]
    assert _network_rows(manager) == before


def test_duplicate_network_is_refused(manager):
    _create(manager, "vmnet")
    with pytest.raises(grpc.RpcError) as err:
        _create(manager, "vmnet", mtu=9000)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert [r for r in _network_rows(manager) if r[0] == "vmnet"] == [("vmnet", None, 1500, True)]


def test_management_network_cannot_be_deleted(manager):
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="ovirtmgmt"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ovirtmgmt" in [r[0] for r in _network_rows(manager)]


def test_deleted_network_is_gone_and_unknown_one_is_not_found(manager):
    _create(manager, "vmnet")
    manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))
    assert "vmnet" not in [r[0] for r in _network_rows(manager)]
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.GetNetwork(fleet_pb2.GetNetworkRequest(name="vmnet"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "vmnet" in err.value.details()


def _enroll(manager, name="host1"):
    _, csr = make_key_and_csr(name)
    manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address="192.0.2.11", csr_pem=csr))


@pytest.mark.parametrize("field, attach", [
    ("attach[0].network", fleet_pb2.HostAttachment(network="nosuchnet", nic="eth0")),
    ("attach[0].nic", fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0 x")),
    ("attach[0].ipv4.method", fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0",
                                                       ipv4={"method": "bootp"})),
    ("attach[0].ipv4.address", fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0",
                                                        ipv4={"method": "static", "address": "192.0.2.300",
                                                              "prefixlen": 24})),
    ("attach[0].ipv4.gateway", fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0",
                                                        ipv4={"method": "static", "address": "192.0.2.30",
                                                              "prefixlen": 24, "gateway": "198.51.100.1"})),
    ("attach[0].default_route", fleet_pb2.HostAttachment(network="ovirtmgmt", nic="eth0", default_route=True)),
])
def test_bad_attachment_is_refused_before_the_agent_is_asked(manager, field, attach):
    """The host has no running agent: a refusal that names the field proves nothing was sent."""
    _enroll(manager)
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", attach=[attach]))
    if field == "attach[0].network":
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nosuchnet" in err.value.details()
    else:
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(err.value)] == [field]
    view = manager.fleet.GetHostNetworks(fleet_pb2.GetHostNetworksRequest(host="host1"))
    assert list(view.networks) == []


def test_detaching_a_network_the_host_lacks_is_not_found(manager):
    _enroll(manager)
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.SetupHostNetworks(fleet_pb2.SetupHostNetworksRequest(host="host1", detach=["ovirtmgmt"]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "ovirtmgmt" in err.value.details()


def test_network_used_by_a_vm_cannot_be_deleted_and_stays(manager):
    from tests.manager.vmhelpers import create_vm
    _create(manager, "vmnet")
    create_vm(manager, "vm1", "nic1=vmnet")
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "vm1" in err.value.details()
    assert "vmnet" in [r[0] for r in _network_rows(manager)]
