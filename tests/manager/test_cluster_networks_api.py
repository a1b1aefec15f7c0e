"""Cluster networks (required or optional), labels and non-operational hosts through the fleet API,
on a real PostgreSQL; the hosts' side is in tests/test_required_networks_e2e.py."""
from __future__ import annotations

import datetime as dt

import grpc
import psycopg
import pytest

from manager.store import hosts as host_store
from virtfleet.enroll import make_key_and_csr
from virtfleet.rpc import field_violations
from virtfleet.v1 import fleet_pb2


def _clusters(net: fleet_pb2.LogicalNetwork) -> list[tuple[str, bool]]:
    return [(c.cluster, c.required) for c in net.clusters]


def _get(manager, name: str) -> fleet_pb2.LogicalNetwork:
    return manager.fleet.GetNetwork(fleet_pb2.GetNetworkRequest(name=name))


def _rows(manager) -> list[tuple]:
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return (conn.execute("SELECT * FROM cluster_networks ORDER BY 1, 2").fetchall()
                + conn.execute("SELECT * FROM network_labels ORDER BY 1, 2").fetchall()
                + conn.execute("SELECT * FROM host_nic_labels ORDER BY 1, 2").fetchall())


def _enroll(manager, name="host1") -> None:
    _, csr = make_key_and_csr(name)
    manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address="192.0.2.11", csr_pem=csr,
                                                         endpoint="unix:///nonexistent/agent.sock"))


def _refused(call, code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, err.value.details()
    return err.value


def test_ovirtmgmt_is_required_and_a_new_network_optional_in_every_cluster(manager):
    assert _clusters(_get(manager, "ovirtmgmt")) == [("Default", True)]
    made = manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    assert _clusters(made) == [("Default", False)] and list(made.labels) == []


def test_attaching_again_changes_whether_it_is_required_and_detaching_removes_it(manager):
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    shown = manager.fleet.AttachNetworkToCluster(fleet_pb2.AttachNetworkToClusterRequest(
        network="vmnet", cluster="Default", required=True))
    assert _clusters(shown) == _clusters(_get(manager, "vmnet")) == [("Default", True)]
    gone = manager.fleet.DetachNetworkFromCluster(fleet_pb2.DetachNetworkFromClusterRequest(
        network="vmnet", cluster="Default"))
    assert _clusters(gone) == []
    err = _refused(lambda: manager.fleet.DetachNetworkFromCluster(fleet_pb2.DetachNetworkFromClusterRequest(
        network="vmnet", cluster="Default")), grpc.StatusCode.NOT_FOUND)
    assert "vmnet" in err.details() and "Default" in err.details()


def test_the_management_network_stays_in_its_clusters(manager):
    before = _rows(manager)
    err = _refused(lambda: manager.fleet.DetachNetworkFromCluster(fleet_pb2.DetachNetworkFromClusterRequest(
        network="ovirtmgmt", cluster="Default")), grpc.StatusCode.FAILED_PRECONDITION)
    assert "--optional" in err.details() and _rows(manager) == before


@pytest.mark.parametrize("request_, named", [
    (fleet_pb2.AttachNetworkToClusterRequest(network="nosuch", cluster="Default"), "nosuch"),
    (fleet_pb2.AttachNetworkToClusterRequest(network="ovirtmgmt", cluster="nosuch"), "nosuch"),
])
def test_unknown_network_or_cluster_is_not_found_by_name(manager, request_, named):
    before = _rows(manager)
    err = _refused(lambda: manager.fleet.AttachNetworkToCluster(request_), grpc.StatusCode.NOT_FOUND)
    assert named in err.details() and _rows(manager) == before


def test_a_network_label_is_shown_and_removed(manager):
    outcome = manager.fleet.LabelNetwork(fleet_pb2.LabelNetworkRequest(network="ovirtmgmt", label="mgmt.A-1_b"))
    assert list(outcome.hosts) == []     # no host NIC carries it yet
    assert list(_get(manager, "ovirtmgmt").labels) == ["mgmt.A-1_b"]
    manager.fleet.UnlabelNetwork(fleet_pb2.UnlabelNetworkRequest(network="ovirtmgmt", label="mgmt.A-1_b"))
    assert list(_get(manager, "ovirtmgmt").labels) == []
    err = _refused(lambda: manager.fleet.UnlabelNetwork(fleet_pb2.UnlabelNetworkRequest(
        network="ovirtmgmt", label="mgmt.A-1_b")), grpc.StatusCode.NOT_FOUND)
    assert "mgmt.A-1_b" in err.details()


@pytest.mark.parametrize("label", ["has space", "a/b", "blue!", "é", "", "x" * 51])
def test_a_bad_label_names_the_field_and_changes_nothing(manager, label):
    _enroll(manager)
    before = _rows(manager)
    calls = [lambda: manager.fleet.LabelNetwork(fleet_pb2.LabelNetworkRequest(network="ovirtmgmt", label=label)),
             lambda: manager.fleet.LabelHostNic(fleet_pb2.LabelHostNicRequest(host="host1", nic="eth1", label=label))]
    for call in calls:
        err = _refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert [f for f, _ in field_violations(err)] == ["label"]
    assert _rows(manager) == before


def test_unknown_host_network_or_nic_is_not_found_by_name(manager):
    _enroll(manager)
    before = _rows(manager)
    for call, named in [
        (lambda: manager.fleet.LabelNetwork(fleet_pb2.LabelNetworkRequest(network="nosuch", label="blue")), "nosuch"),
        (lambda: manager.fleet.LabelHostNic(fleet_pb2.LabelHostNicRequest(host="nohost", nic="eth1", label="blue")),
         "nohost"),
        (lambda: manager.fleet.LabelHostNic(fleet_pb2.LabelHostNicRequest(host="host1", nic="eth9", label="blue")),
         "eth9"),
        (lambda: manager.fleet.UnlabelHostNic(fleet_pb2.UnlabelHostNicRequest(host="host1", nic="eth1",
                                                                              label="blue")), "blue"),
    ]:
        assert named in _refused(call, grpc.StatusCode.NOT_FOUND).details()
    assert _rows(manager) == before


def test_a_non_operational_host_stays_so_through_its_reports_until_its_networks_are_back(manager):
    """The report writer moves hosts to up; it must not undo the verdict (service/operational.py)."""
    _enroll(manager)
    with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
        now = dt.datetime.now(dt.timezone.utc)
        host_store.mark_heard(conn, [("host1", now)])
        assert host_store.get_host(conn, "host1").status == "up"
        change = host_store.set_operational(conn, "host1", "required network vmnet is missing")
        assert (change.status, change.old_reason) == ("non-operational", "")
        host_store.mark_heard(conn, [("host1", now)])
        host_store.save_reports(conn, [host_store.ReportRecord("host1", 1, now, {})])
        shown = manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1"))
        assert (shown.status, shown.status_reason) == ("non-operational", "required network vmnet is missing")
        host_store.mark_unreachable(conn, ["host1"])
        assert manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1")).status == "unreachable"
        host_store.mark_heard(conn, [("host1", now)])
        assert host_store.get_host(conn, "host1").status == "non-operational"
        back = host_store.set_operational(conn, "host1", "")
        assert (back.status, back.old_reason) == ("up", "required network vmnet is missing")
        assert host_store.set_operational(conn, "nohost", "x") is None
