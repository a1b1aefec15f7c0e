"""Every change made through the fleet API is in `events` with who made it and how it ended."""
from __future__ import annotations

import grpc
import psycopg
import pytest

from manager.client import add_admin, open_channel
from tests.fixtures.manager import running_manager
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc, macpool_pb2, macpool_pb2_grpc


def _events(manager) -> list[tuple]:
    manager.app.events.flush()
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return conn.execute("SELECT identity_name, identity_kind, role, rpc, object_kind, object_name, code, "
                            "request_id FROM events WHERE identity_kind <> 'system' ORDER BY id").fetchall()


def test_changes_and_refusals_are_recorded_with_identity_and_status(empty_db, tmp_path):
    with running_manager(empty_db, fleet_listen="127.0.0.1:0") as manager:
        fleet = manager.fleet
        fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet", vlan=10)))
        fleet.ListNetworks(fleet_pb2.ListNetworksRequest())                      # a read: not an event
        with pytest.raises(grpc.RpcError) as bad:
            fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(
                network=fleet_pb2.LogicalNetwork(name="bad", vlan=5000)))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        add_admin(manager.channel, name="alice", role="auditor", out_dir=tmp_path / "alice")
        tcp = f"127.0.0.1:{manager.listeners.fleet_port}"
        with open_channel(tcp, cert_dir=tmp_path / "alice") as channel:
            with pytest.raises(grpc.RpcError) as refused:
                macpool_pb2_grpc.MacPoolServiceStub(channel).DeleteMacPool(
                    macpool_pb2.DeleteMacPoolRequest(name="Default"))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            fleet_pb2_grpc.FleetServiceStub(channel).GetNetwork(fleet_pb2.GetNetworkRequest(name="vmnet"))
        fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))
        rows = _events(manager)
    assert [r[:7] for r in rows] == [
        ("root", "unix", "admin", "/virtfleet.v1.FleetService/CreateNetwork", "network", "vmnet", "OK"),
        ("root", "unix", "admin", "/virtfleet.v1.FleetService/CreateNetwork", "network", "bad", "INVALID_ARGUMENT"),
        ("root", "unix", "admin", "/virtfleet.v1.AdminService/AddAdmin", "admin", "alice", "OK"),
        ("alice", "cert", "auditor", "/virtfleet.v1.MacPoolService/DeleteMacPool", "macpool", "Default",
         "PERMISSION_DENIED"),
        ("root", "unix", "admin", "/virtfleet.v1.FleetService/DeleteNetwork", "network", "vmnet", "OK"),
    ]
    assert all(len(r[7]) >= 8 for r in rows) and len({r[7] for r in rows}) == len(rows)   # one request id each
