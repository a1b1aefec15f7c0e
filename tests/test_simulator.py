"""The fleet simulator against a real manager: same contract, same TLS, states and deltas the monitor holds."""
from __future__ import annotations

import tempfile
from pathlib import Path

import grpc
import pytest

from agent.sim.fleet import FleetSimulator, remove_link, set_mtu
from tests.fixtures.agent_process import simulated_fleet_material
from tests.fixtures.lab import eventually
from virtfleet.v1 import agent_pb2, agent_pb2_grpc, audit_pb2, audit_pb2_grpc, fleet_pb2, netstate_pb2




@pytest.fixture
def fleet(manager):
    with tempfile.TemporaryDirectory(prefix="vft-sim-") as d:
        material = simulated_fleet_material(manager.app.ca, _enroller(manager, Path(d) / "sim.sock"),
                                            hosts=3, vms=2, nics=2)
        with FleetSimulator(material, Path(d) / "sim.sock", hosts=3, vms=2, nics=2) as sim:
            yield sim


def _enroller(manager, sock: Path):
    """Enrolls one simulated host through the fleet API; the certificate it got (for its pin)."""
    return lambda spec, csr: manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(
        name=spec.name, address=spec.address, csr_pem=csr, endpoint=f"unix://{sock}")).certificate_pem


def holds(manager, sim: FleetSimulator, name: str) -> bool:
    current = manager.app.monitor.current(name)
    return current is not None and current.state == sim.hosts[name].state


def test_reports_have_the_shape_of_a_real_agents(manager, fleet):
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    state = manager.app.monitor.current("sim00001").state
    names = [l.name for l in state.links]
    assert names[:5] == ["lo", "eth0", "eth1", "ovirtmgmt", "vmnet"] and names[5:] == ["vnet0", "vnet1", "vnet2", "vnet3"]
    vmnet = next(l for l in state.links if l.name == "vmnet")
    assert list(vmnet.bridge.ports) == ["eth1", "vnet0", "vnet1", "vnet2", "vnet3"]
    assert isinstance(state, netstate_pb2.NetworkState) and state.hostname == "sim00001"


def test_changes_arrive_as_deltas_and_the_manager_converges(manager, fleet):
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    before = manager.app.monitor.changes_ingested
    fleet.change([("sim00002", set_mtu("vmnet", 9000)), ("sim00003", remove_link("vnet1"))])
    fleet.churn(50)
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    assert manager.app.monitor.changes_ingested > before
    assert next(l.mtu for l in manager.app.monitor.current("sim00002").state.links if l.name == "vmnet") == 9000


def test_an_agent_restart_meanwhile_changed_is_followed_by_a_snapshot(manager, fleet):
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    old_epoch = manager.app.monitor.current("sim00001").epoch
    fleet.restart("sim00001")
    fleet.change([("sim00001", remove_link("vnet0"))])
    assert eventually(lambda: holds(manager, fleet, "sim00001")
                      and manager.app.monitor.current("sim00001").epoch != old_epoch)


def test_only_the_manager_may_call_and_it_must_name_the_host(manager, fleet):
    ca = manager.app.ca
    material = ca.manager_material()
    channel = grpc.secure_channel(fleet.endpoint, material.channel_credentials(),
                                  options=[("grpc.ssl_target_name_override", "sim00001")])
    with channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetNetworkState(agent_pb2.GetNetworkStateRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        state = stub.GetNetworkState(agent_pb2.GetNetworkStateRequest(), metadata=(("x-virtfleet-host", "sim00003"),),
                                     timeout=10)
    assert state.hostname == "sim00003"


def test_the_audit_sees_simulated_drift(manager, fleet):
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    fleet.change([("sim00002", lambda s: s.links.append(netstate_pb2.Link(
        index=99, name="br-stray", kind="bridge", mtu=1500, flags=["UP"])))])
    assert eventually(lambda: holds(manager, fleet, "sim00002"))
    findings = audit_pb2_grpc.AuditServiceStub(manager.channel).RunAudit(
        audit_pb2.RunAuditRequest(category="unexpected")).findings
    assert ("sim00002", "bridge br-stray") in {(f.host, f.object) for f in findings}


def test_a_silent_host_becomes_unreachable(manager):
    manager.app.monitor.unreachable_after_s = 3.0
    with tempfile.TemporaryDirectory(prefix="vft-sim-") as d:
        material = simulated_fleet_material(manager.app.ca, _enroller(manager, Path(d) / "sim.sock"), hosts=1)
        sim = FleetSimulator(material, Path(d) / "sim.sock", hosts=1)
        with sim:
            assert eventually(lambda: holds(manager, sim, "sim00001"))
    status = lambda: manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="sim00001")).status  # noqa: E731
    assert eventually(lambda: status() == "unreachable")
    assert not manager.app.monitor.current("sim00001").reachable


def test_a_cut_stream_resumes_with_a_delta_not_a_snapshot(manager, fleet):
    assert eventually(lambda: all(holds(manager, fleet, n) for n in fleet.hosts))
    kinds: list[str] = []
    manager.app.monitor.add_listener(
        lambda held, event: held.name == "sim00001" and kinds.append("state" if event.HasField("state") else "delta"))
    epoch = manager.app.monitor.current("sim00001").epoch
    fleet.cut("sim00001")
    fleet.change([("sim00001", set_mtu("eth1", 1400))])
    assert eventually(lambda: holds(manager, fleet, "sim00001"))
    assert kinds and "state" not in kinds
    assert manager.app.monitor.current("sim00001").epoch == epoch


def test_the_periodic_audit_keeps_the_latest_findings(manager, fleet):
    from manager.service.audit import AuditService

    app = manager.app
    audits = AuditService(app.pool, app.monitor, app.networks, app.agents, interval_s=0.2)
    audits.start_periodic()
    try:
        assert eventually(lambda: audits._latest is not None)
    finally:
        audits.stop()
    assert audits.latest().hosts == 3


def test_heartbeats_of_a_quiet_host_move_its_last_report_time(manager):
    manager.app.monitor.unreachable_after_s = 3.0   # heartbeats every second
    with tempfile.TemporaryDirectory(prefix="vft-sim-") as d:
        material = simulated_fleet_material(manager.app.ca, _enroller(manager, Path(d) / "sim.sock"), hosts=1)
        sim = FleetSimulator(material, Path(d) / "sim.sock", hosts=1)
        with sim:
            last = lambda: manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="sim00001")).last_report_at  # noqa: E731
            assert eventually(lambda: last().seconds > 0)
            first = last().ToDatetime()
            assert eventually(lambda: last().ToDatetime() > first)
            assert manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="sim00001")).status == "up"
