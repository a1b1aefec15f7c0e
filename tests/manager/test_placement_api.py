"""Placement through the fleet API: explained, chosen by weights, refused with every reason; maintenance and
`host activate`; the cluster's migration network and where migrations are sent; host memory from the agent.

Real PostgreSQL, a real manager, and hosts whose agents are the real VM servicer on libvirt's test
driver (as in test_vms_runtime.py). These hosts have no network stream: their last network report is
stored as the monitor would store it (host_store.save_report), which is what placement reads for a host
the monitor does not hold.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import psycopg
import pytest
from google.protobuf.json_format import MessageToDict

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.store import hosts as host_store  # noqa: E402
from manager.store import networks as net_store  # noqa: E402
from manager.service.placement import migration_address  # noqa: E402
from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.errors import FailedPrecondition, NotFound  # noqa: E402
from virtfleet.rpc import field_violations  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import fleet_pb2, netstate_pb2, vm_pb2, vm_pb2_grpc, vms_pb2  # noqa: E402

from agent.rpc.vm import add_vm_service  # noqa: E402

from .vmhelpers import api, create_vm, db, without_network_filters  # noqa: E402


class MemoryReportingAgent(vm_pb2_grpc.VmAgentServiceServicer):
    """An agent that answers GetHostResources (the real one is being given it; until then it is UNIMPLEMENTED)."""

    def GetHostResources(self, request, context):
        return vm_pb2.HostResources(memory_total_mib=8192, memory_available_mib=6000)


def _serve(manager, tmp_path: Path, name: str, index: int, make) -> tuple[grpc.Server, object]:
    sock = tmp_path / f"agent-{name}.sock"
    key, csr = make_key_and_csr(name)
    material = TlsMaterial(manager.app.ca.cert_pem, manager.app.ca.sign_agent_csr(csr, name, f"192.0.2.{10 + index}"),
                           key)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = make(server)
    server.add_secure_port(f"unix://{sock}", material.server_credentials())
    server.start()
    with db(manager) as conn:
        conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                        SELECT id, %s, %s, %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                     (name, f"192.0.2.{10 + index}", f"unix://{sock}"))
    return server, servicer


@pytest.fixture
def hosts(manager, tmp_path):
    """host1 and host2, up, each with the agent's VM runtime on test:///default, each reporting ovirtmgmt."""
    without_network_filters(manager)
    served = [_serve(manager, tmp_path, f"host{i}", i, lambda s: add_vm_service(s, "test:///default"))
              for i in (1, 2)]
    for name in ("host1", "host2"):
        report(manager, name, bridge("ovirtmgmt"))
    yield ["host1", "host2"]
    for name, (server, servicer) in zip(("host1", "host2"), served):
        with db(manager) as conn:
            running = [r[0] for r in conn.execute(
                "SELECT v.name FROM vms v JOIN hosts h ON h.id = v.host_id WHERE h.name = %s", (name,))]
        for vm in running:
            api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=vm, force=True))
        server.stop(grace=None).wait()
        servicer.close()


def bridge(name: str, address: str = "") -> list[netstate_pb2.Link]:
    addresses = [netstate_pb2.Address(family="inet", address=address.split("/")[0],
                                      prefixlen=int(address.split("/")[1]), scope="global")] if address else []
    return [netstate_pb2.Link(name=name, kind="bridge", mtu=1500, flags=["UP"], addresses=addresses)]


def report(manager, host: str, *links: list[netstate_pb2.Link]) -> None:
    state = netstate_pb2.NetworkState(links=[link for group in links for link in group])
    with manager.app.pool.connection() as conn:
        host_store.save_report(conn, host, 1, MessageToDict(state, preserving_proto_field_name=True))


def set_memory(manager, **totals: int | None) -> None:
    with db(manager) as conn:
        for host, total in totals.items():
            conn.execute("UPDATE hosts SET memory_total_mib = %s WHERE name = %s", (total, host))


def set_maintenance(manager, host: str, state: str) -> None:
    with manager.app.pool.connection() as conn:
        host_store.set_maintenance(conn, host, state)


def explain(manager, vm: str, purpose: str = "") -> vms_pb2.PlacementExplanation:
    return api(manager).ExplainPlacement(vms_pb2.ExplainPlacementRequest(vm=vm, purpose=purpose))


def _virtfleet(manager, *args: str) -> subprocess.CompletedProcess:
    cli = str(Path(sys.executable).with_name("virtfleet"))
    return subprocess.run([cli, "--manager", manager.target, *args], capture_output=True, text=True, timeout=60)


def refused(call, request) -> grpc.RpcError:
    return pytest.raises(grpc.RpcError, call, request).value


# -- explain ---------------------------------------------------------------------------------------


def test_explain_gives_every_host_its_verdict_and_starts_nothing(manager, hosts):
    create_vm(manager, "pl-a", "nic1=ovirtmgmt", memory_mib=512)
    set_memory(manager, host1=4096, host2=None)
    set_maintenance(manager, "host2", "maintenance")
    e = explain(manager, "pl-a")
    assert e.vm == "pl-a" and e.chosen == "host1"
    assert [(h.host, h.accepted, list(h.reasons)) for h in e.hosts] == [
        ("host1", True, []), ("host2", False, ["host is in maintenance"])]
    assert (e.hosts[0].free_memory_mib, e.hosts[0].vm_count) == (4096, 0) and e.hosts[0].score > 4096

    shown = _virtfleet(manager, "vm", "start", "pl-a", "--explain")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("host1" in line and "accepted" in line for line in lines), shown.stdout
    assert any("host2" in line and "refused" in line and "host is in maintenance" in line for line in lines)
    assert "chosen: host1" in shown.stdout
    assert api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="pl-a")).state == "down"


def test_explain_notes_unknown_memory_beside_an_accepted_host(manager, hosts):
    create_vm(manager, "pl-b", "nic1=ovirtmgmt", memory_mib=512)
    e = explain(manager, "pl-b")
    assert all(h.accepted and "memory unknown" in h.reasons for h in e.hosts)
    shown = json.loads(_virtfleet(manager, "vm", "placement", "pl-b", "-o", "json").stdout)
    assert shown["chosen"] == e.chosen and {h["host"] for h in shown["hosts"]} == {"host1", "host2"}


def test_a_host_lacking_the_vms_network_is_refused_with_every_reason(manager, hosts):
    create_vm(manager, "pl-c", "nic1=ovirtmgmt", "nic2=direct:eth7", memory_mib=2048)
    report(manager, "host1", bridge("other"))
    set_memory(manager, host1=1024, host2=8192)
    e = explain(manager, "pl-c")
    assert e.chosen == ""
    host1 = next(h for h in e.hosts if h.host == "host1")
    assert list(host1.reasons) == [
        "network ovirtmgmt is not on the host (no bridge ovirtmgmt)",
        "vNIC nic2: host NIC eth7 does not exist on the host",
        "not enough memory: the VM needs 2048 MiB, 1024 MiB free of 1024 MiB (100% of 1024 MiB)"]
    err = refused(api(manager).StartVirtualMachine, vms_pb2.StartVirtualMachineRequest(name="pl-c", host="host1"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert all(r in err.details() for r in host1.reasons), err.details()
    err = refused(api(manager).StartVirtualMachine, vms_pb2.StartVirtualMachineRequest(name="pl-c"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "host1: network ovirtmgmt is not on the host" in err.details()
    assert "host2: vNIC nic2: host NIC eth7 does not exist" in err.details()


def test_placement_for_a_migration_never_offers_the_host_the_vm_runs_on(manager, hosts):
    create_vm(manager, "pl-d", "nic1=ovirtmgmt", memory_mib=512)
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="pl-d", host="host1"))
    e = explain(manager, "pl-d", "migrate")
    assert e.chosen == "host2"
    assert [list(h.reasons) for h in e.hosts if h.host == "host1"] == [["the VM runs here"]]
    assert manager.app.placement.check("pl-d", "host1") == ["the VM runs here"]
    assert manager.app.placement.choose("pl-d", "migrate") == "host2"
    with pytest.raises(FailedPrecondition) as none_left:
        manager.app.placement.choose("pl-d", "migrate", exclude=frozenset({"host2"}))
    assert "host2: excluded" in str(none_left.value) and "host1: the VM runs here" in str(none_left.value)


# -- start chooses by weights ----------------------------------------------------------------------


def test_start_without_a_host_takes_the_most_free_memory_then_the_fewest_vms(manager, hosts):
    for name in ("pl-e1", "pl-e2", "pl-e3"):
        create_vm(manager, name, "nic1=ovirtmgmt", memory_mib=512)
    set_memory(manager, host1=2048, host2=8192)
    start = lambda vm: api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=vm)).host  # noqa
    assert start("pl-e1") == "host2"
    assert start("pl-e2") == "host2"          # 7680 MiB free there still beats 2048 and the VM count
    set_memory(manager, host1=7168, host2=8192)
    assert start("pl-e3") == "host1"          # 7168 free against 7168: the fewer VMs win
    e = explain(manager, "pl-e3", "migrate")
    assert [(h.host, h.free_memory_mib, h.vm_count) for h in e.hosts] == [("host2", 7168, 2), ("host1", 7168, 0)]


# -- maintenance and activate ----------------------------------------------------------------------


def test_a_host_in_maintenance_is_avoided_until_activated(manager, hosts):
    create_vm(manager, "pl-f", "nic1=ovirtmgmt", memory_mib=512)
    create_vm(manager, "pl-g", "nic1=ovirtmgmt", memory_mib=512)
    set_maintenance(manager, "host1", "maintenance")
    set_maintenance(manager, "host2", "preparing")
    listed = {h.name: h for h in manager.fleet.ListHosts(fleet_pb2.ListHostsRequest()).hosts}
    assert (listed["host1"].status, listed["host2"].status) == ("maintenance", "preparing-maintenance")
    assert listed["host1"].status_reason == "monitored status: up"
    table = _virtfleet(manager, "host", "list").stdout
    assert any("host1" in line and "maintenance" in line and "yes" in line for line in table.splitlines()), table
    err = refused(api(manager).StartVirtualMachine, vms_pb2.StartVirtualMachineRequest(name="pl-f"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "host is in maintenance" in err.details()
    assert "host is preparing for maintenance" in err.details()

    shown = _virtfleet(manager, "host", "activate", "host1")
    assert shown.returncode == 0 and "host1 is back in service; status up" in shown.stdout, shown.stderr
    assert api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="pl-f")).host == "host1"
    err = refused(api(manager).StartVirtualMachine, vms_pb2.StartVirtualMachineRequest(name="pl-g", host="host2"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "preparing for maintenance" in err.details()
    assert manager.fleet.ActivateHost(fleet_pb2.ActivateHostRequest(name="host2")).status == "up"
    assert api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="pl-g", host="host2")).host \
        == "host2"

    again = refused(manager.fleet.ActivateHost, fleet_pb2.ActivateHostRequest(name="host1"))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and "not in maintenance" in again.details()


def test_the_monitored_status_keeps_being_written_under_maintenance(manager, hosts):
    set_maintenance(manager, "host1", "maintenance")
    with manager.app.pool.connection() as conn:
        host_store.mark_unreachable(conn, ["host1"])
        assert host_store.get_host(conn, "host1").status == "unreachable"
        host_store.set_operational(conn, "host1", "")   # an unreachable host keeps its status
        host_store.mark_heard(conn, [("host1", host_store.get_host(conn, "host1").enrolled_at)])
        record = host_store.get_host(conn, "host1")
    assert (record.status, record.maintenance, record.shown_status) == ("up", "maintenance", "maintenance")
    with manager.app.pool.connection() as conn:
        host_store.set_operational(conn, "host1", "required network x is missing")
    h = manager.fleet.GetHost(fleet_pb2.GetHostRequest(name="host1"))
    assert (h.status, h.status_reason) == ("maintenance",
                                           "monitored status: non-operational (required network x is missing)")
    assert manager.fleet.ActivateHost(fleet_pb2.ActivateHostRequest(name="host1")).status == "non-operational"


# -- the migration network -------------------------------------------------------------------------


def test_the_migration_network_is_one_per_cluster_and_moves_in_one_step(manager, hosts):
    for name in ("mig1", "mig2"):
        manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name)))
    first = manager.fleet.AttachNetworkToCluster(fleet_pb2.AttachNetworkToClusterRequest(
        network="mig1", cluster="Default", migration=True))
    assert [(c.cluster, c.migration) for c in first.clusters] == [("Default", True)]
    shown = _virtfleet(manager, "network", "attach-cluster", "mig2", "Default", "--migration")
    assert shown.returncode == 0 and "migration network" in shown.stdout, shown.stderr
    nets = {n["name"]: n for n in json.loads(_virtfleet(manager, "network", "list", "-o", "json").stdout)}
    assert [c["migration"] for c in nets["mig1"]["clusters"]] == [False]
    assert [c["migration"] for c in nets["mig2"]["clusters"]] == [True]
    assert "Default (optional, migration)" in _virtfleet(manager, "network", "show", "mig2").stdout
    with db(manager) as conn:
        assert conn.execute("SELECT count(*) FROM cluster_networks WHERE migration").fetchone()[0] == 1


def test_migrations_go_to_the_migration_networks_address_else_the_management_address(manager, hosts):
    pool = manager.app.pool
    assert migration_address(pool, "Default", "host2") == "192.0.2.12"          # no migration network
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="mig")))
    manager.fleet.AttachNetworkToCluster(fleet_pb2.AttachNetworkToClusterRequest(
        network="mig", cluster="Default", migration=True))
    assert migration_address(pool, "Default", "host2") == "192.0.2.12"          # host2 does not carry it
    with pool.connection() as conn, conn.transaction():
        host = host_store.get_host(conn, "host2")
        net = net_store.get_network(conn, "mig")
        net_store.record_host_change(conn, host.id, upsert=[(net, net_store.AttachmentRecord(
            "mig", "eth2", "static", "198.51.100.12", 24, None, False))], detach=[], bonds_upsert=[], bonds_remove=[])
    report(manager, "host2", bridge("ovirtmgmt"), bridge("mig"))
    assert migration_address(pool, "Default", "host2") == "192.0.2.12"          # no address on it yet
    report(manager, "host2", bridge("ovirtmgmt"), bridge("mig", "198.51.100.12/24"))
    with pool.connection() as conn:
        assert migration_address(conn, "Default", "host2") == "198.51.100.12"
    with pytest.raises(NotFound):
        migration_address(pool, "Default", "nohost")


# -- host memory from the agent --------------------------------------------------------------------


def test_host_memory_is_learnt_from_the_agent_or_left_unknown(manager, tmp_path):
    served = [_serve(manager, tmp_path, "mem1", 31, lambda s: vm_pb2_grpc.add_VmAgentServiceServicer_to_server(
                  MemoryReportingAgent(), s)),
              _serve(manager, tmp_path, "mem2", 32, lambda s: vm_pb2_grpc.add_VmAgentServiceServicer_to_server(
                  vm_pb2_grpc.VmAgentServiceServicer(), s))]
    try:
        assert manager.app.host_memory.learn("mem1") == 8192
        assert manager.app.host_memory.learn("mem2") is None          # UNIMPLEMENTED: an agent without the call
        with db(manager) as conn:
            totals = dict(conn.execute("SELECT name, memory_total_mib FROM hosts ORDER BY name").fetchall())
        assert totals == {"mem1": 8192, "mem2": None}
        create_vm(manager, "pl-m", memory_mib=512)
        e = explain(manager, "pl-m")
        assert [(h.host, h.free_memory_mib) for h in e.hosts] == [("mem1", 8192), ("mem2", 0)]
        assert "memory unknown" in e.hosts[1].reasons
    finally:
        for server, _ in served:
            server.stop(grace=None).wait()


def test_a_host_whose_libvirt_lacks_the_virtual_network_is_refused_once_its_agent_said_so(manager, hosts):
    """The test driver's libvirt has network `default` active and no nwfilter driver: a VM on `virtual:default`
    fits, one on `virtual:dmz` is refused by name; before the agents said, both are only noted."""
    create_vm(manager, "pl-v", "nic1=virtual:default")
    create_vm(manager, "pl-w", "nic1=virtual:dmz")
    assert all("virtual networks not checked (dmz)" in " ".join(h.reasons) for h in explain(manager, "pl-w").hosts)
    for host in hosts:
        manager.app.host_memory.learn(host)
    assert explain(manager, "pl-v").chosen in hosts
    e = explain(manager, "pl-w")
    assert e.chosen == "" and [list(h.reasons) for h in e.hosts] == \
        [["virtual network dmz is not active in the host's libvirt"]] * 2


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input_names_its_field(manager, hosts):
    create_vm(manager, "pl-z", memory_mib=512)
    err = refused(api(manager).ExplainPlacement, vms_pb2.ExplainPlacementRequest(vm="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in err.details() and "(vm)" in err.details()
    err = refused(api(manager).ExplainPlacement, vms_pb2.ExplainPlacementRequest(vm="pl-z", purpose="evacuate"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in field_violations(err)] == ["purpose"]
    err = refused(api(manager).ExplainPlacement, vms_pb2.ExplainPlacementRequest(vm="a\x00b"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in field_violations(err)] == ["vm"]
    with pytest.raises(NotFound) as unknown:
        manager.app.placement.check("pl-z", "nohost")
    assert "(host)" in str(unknown.value)
    err = refused(manager.fleet.ActivateHost, fleet_pb2.ActivateHostRequest(name="nohost"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nohost" in err.details()
    err = refused(manager.fleet.ActivateHost, fleet_pb2.ActivateHostRequest(name=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in field_violations(err)] == ["name"]
    err = refused(manager.fleet.AttachNetworkToCluster, fleet_pb2.AttachNetworkToClusterRequest(
        network="ovirtmgmt", cluster="nocluster", migration=True))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nocluster" in err.details()
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM cluster_networks WHERE migration").fetchone()[0] == 0


def test_a_host_that_comes_up_is_asked_its_memory_once_by_the_monitors_hook(manager, tmp_path):
    """Simulated hosts (one AgentService listener, no VM runtime): each is asked when its stream starts, the
    agent answers UNIMPLEMENTED, and its memory stays unknown — nothing fails, nothing is asked again."""
    import tempfile

    from agent.sim.fleet import FleetSimulator
    from tests.fixtures.agent_process import simulated_fleet_material
    from tests.fixtures.lab import eventually

    with tempfile.TemporaryDirectory(prefix="vft-sim-") as d:
        sock = Path(d) / "sim.sock"
        enroll = lambda spec, csr: manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(  # noqa: E731
            name=spec.name, address=spec.address, csr_pem=csr, endpoint=f"unix://{sock}")).certificate_pem
        material = simulated_fleet_material(manager.app.ca, enroll, hosts=2, vms=1, nics=2)
        with FleetSimulator(material, sock, hosts=2, vms=1, nics=2) as sim:
            assert eventually(lambda: all(manager.app.monitor.current(n) is not None for n in sim.hosts))
            assert eventually(lambda: all(manager.app.host_memory.idle(n) for n in sim.hosts))
            with db(manager) as conn:
                assert conn.execute("SELECT count(*) FROM hosts WHERE memory_total_mib IS NOT NULL").fetchone()[0] == 0
