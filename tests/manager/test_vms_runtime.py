"""Starting and stopping VMs through real agents' VmAgentService over mutual TLS (libvirt's test driver).

Each "host" here is the agent's VM servicer served in this process on a unix socket with a
certificate the manager's CA signed for it; the manager reaches it like any enrolled host.
The test driver keeps the PCI addresses it is given and assigns none itself, and cannot
hot-plug: the lab's end-to-end test covers first-boot PCI assignment on real QEMU.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import psycopg
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.rpc import field_violations  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import vm_pb2, vm_pb2_grpc, vms_pb2  # noqa: E402

from agent.rpc.vm import add_vm_service  # noqa: E402

from .vmhelpers import api, create_template, create_vm, leased, vm_rows, without_network_filters  # noqa: E402


@pytest.fixture
def hosts(manager, tmp_path):
    """Two enrolled hosts that are up, each with its agent's VM runtime on test:///default."""
    without_network_filters(manager)
    served = []
    for i in (1, 2):
        name, sock = f"host{i}", tmp_path / f"agent{i}.sock"
        key, csr = make_key_and_csr(name)
        material = TlsMaterial(manager.app.ca.cert_pem, manager.app.ca.sign_agent_csr(csr, name, f"192.0.2.{10 + i}"),
                               key)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = add_vm_service(server, "test:///default")
        server.add_secure_port(f"unix://{sock}", material.server_credentials())
        server.start()
        with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
            conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                            SELECT id, %s, %s, %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                         (name, f"192.0.2.{10 + i}", f"unix://{sock}"))
        served.append((name, sock, server, servicer))
    yield [s[0] for s in served]
    for name, sock, server, servicer in served:
        channel = grpc.secure_channel(f"unix://{sock}", manager.app.ca.manager_material().channel_credentials(),
                                      options=[("grpc.ssl_target_name_override", name)])
        stub = vm_pb2_grpc.VmAgentServiceStub(channel)
        for vm in stub.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms:
            if vm.name.startswith("rt-"):
                if vm.state != vm_pb2.VM_STATE_SHUTOFF:
                    stub.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name), timeout=5)
                stub.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name), timeout=5)
        channel.close()
        server.stop(grace=None).wait()
        servicer.close()


def _agent_vm(manager, host: str, sock: Path, vm: str) -> vm_pb2.VmStatus:
    channel = grpc.secure_channel(f"unix://{sock}", manager.app.ca.manager_material().channel_credentials(),
                                  options=[("grpc.ssl_target_name_override", host)])
    with channel:
        return vm_pb2_grpc.VmAgentServiceStub(channel).GetVm(vm_pb2.GetVmRequest(name=vm), timeout=5)


def test_start_runs_the_vm_on_a_host_with_its_pci_and_macs_then_stop(manager, hosts, tmp_path):
    create_template(manager, "t1", "nic1=ovirtmgmt,pci=0000:00:05.0", "nic2=ovirtmgmt,pci=0000:00:03.0")
    made = create_vm(manager, "rt-a", template="t1")
    vm = api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-a", host="host2"))
    assert (vm.state, vm.host) == ("up", "host2") and vm.first_boot_at.seconds
    assert all(n.host_device for n in vm.nics)
    live = _agent_vm(manager, "host2", tmp_path / "agent2.sock", "rt-a")
    assert live.state == vm_pb2.VM_STATE_RUNNING
    assert sorted((n.name, n.mac, f"0000:00:{n.pci.slot:02x}.0") for n in live.nics) == sorted(
        (n.name, n.mac, n.pci_address) for n in made.nics)
    err = pytest.raises(grpc.RpcError, api(manager).DeleteVirtualMachine,
                        vms_pb2.DeleteVirtualMachineRequest(name="rt-a")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    down = api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-a", timeout_s=5))
    assert (down.state, down.host) == ("down", "")
    assert not any(n.host_device for n in down.nics)
    assert [n.pci_address for n in down.nics] == ["0000:00:03.0", "0000:00:05.0"]


def test_bulk_start_spreads_vms_over_the_hosts(manager, hosts):
    create_template(manager, "t1", "nic1=ovirtmgmt", "nic2=ovirtmgmt")
    progress = list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="rt-b", count=4, template="t1", batch_size=2, start=True)))
    assert [(p.created, p.started) for p in progress] == [(2, 0), (4, 0), (4, 1), (4, 2), (4, 3), (4, 4)]
    vms = api(manager).ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest()).vms
    assert sorted(v.host for v in vms) == ["host1", "host1", "host2", "host2"]


def test_failed_hot_plug_leaves_the_vm_and_the_pool_as_they_were(manager, hosts):
    create_vm(manager, "rt-c", "nic1=ovirtmgmt")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-c"))
    with pytest.raises(grpc.RpcError):
        api(manager).AddNic(vms_pb2.AddNicRequest(vm="rt-c", nic=vms_pb2.Nic(name="nic2", network="ovirtmgmt")))
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-c", force=True))


def test_start_on_a_host_outside_the_cluster_or_twice_is_refused(manager, hosts):
    create_vm(manager, "rt-d", "nic1=ovirtmgmt")
    err = pytest.raises(grpc.RpcError, api(manager).StartVirtualMachine,
                        vms_pb2.StartVirtualMachineRequest(name="rt-d", host="nohost")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "nohost" in err.details()
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-d"))
    err = pytest.raises(grpc.RpcError, api(manager).StartVirtualMachine,
                        vms_pb2.StartVirtualMachineRequest(name="rt-d")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "already running" in err.details()
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-d", force=True))


def test_snapshot_of_a_running_vm_keeps_its_pci_and_cannot_be_restored_while_it_runs(manager, hosts):
    create_vm(manager, "rt-e", "nic1=ovirtmgmt,pci=0000:00:04.0")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-e"))
    snap = api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="rt-e", name="s-e"))
    assert [(n.pci_address, n.host_device) for n in snap.nics] == [("0000:00:04.0", "")]
    err = pytest.raises(grpc.RpcError, api(manager).RestoreSnapshot,
                        vms_pb2.RestoreSnapshotRequest(name="s-e")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "stop it" in err.details()
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-e", force=True))
    assert api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="s-e")).vm.state == "down"


def test_refused_start_leaves_the_vm_down_and_nothing_defined_on_the_host(manager, hosts, tmp_path):
    create_vm(manager, "rt-f", "nic1=direct:eth9,mode=passthrough")
    create_vm(manager, "rt-g", "nic1=direct:eth9,mode=passthrough")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-f", host="host1"))
    err = pytest.raises(grpc.RpcError, api(manager).StartVirtualMachine,
                        vms_pb2.StartVirtualMachineRequest(name="rt-g", host="host1")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "rt-f" in err.details()
    g = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="rt-g"))
    assert (g.state, g.host, g.first_boot_at.seconds) == ("down", "", 0)
    with pytest.raises(grpc.RpcError) as gone:
        _agent_vm(manager, "host1", tmp_path / "agent1.sock", "rt-g")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-f", force=True))


def _virtfleet(manager, *args: str) -> subprocess.CompletedProcess:
    """The admin's command, as installed (errors printed by the CLI itself, field paths included)."""
    cli = str(Path(sys.executable).with_name("virtfleet"))
    return subprocess.run([cli, "--manager", manager.target, *args], capture_output=True, text=True, timeout=60)


def test_a_vnic_field_only_the_agent_judges_reaches_the_admin_with_its_full_path(manager, hosts, tmp_path):
    # 802.1Qbg managerid 300 is refused by the agent (spec.nics[2].qbg.managerid), not by the manager
    create_vm(manager, "rt-i", "nic1=ovirtmgmt", "nic2=ovirtmgmt", "nic3=direct:eth1,qbg=300/1/1")
    err = pytest.raises(grpc.RpcError, api(manager).StartVirtualMachine,
                        vms_pb2.StartVirtualMachineRequest(name="rt-i", host="host1")).value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err)] == ["nics[2].virtualport.managerid"]
    shown = _virtfleet(manager, "vm", "start", "rt-i", "--host", "host1")
    assert shown.returncode == 1 and "INVALID_ARGUMENT" in shown.stderr
    assert "field nics[2].virtualport.managerid: vNIC 'nic3'" in shown.stderr and "managerid" in shown.stderr
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="rt-i"))
    assert (vm.state, vm.host) == ("down", "")
    with pytest.raises(grpc.RpcError) as gone:
        _agent_vm(manager, "host1", tmp_path / "agent1.sock", "rt-i")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_refused_hot_plug_names_the_admins_field_and_leaves_nothing(manager, hosts):
    create_vm(manager, "rt-j", "nic1=ovirtmgmt")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-j"))
    shown = _virtfleet(manager, "vm", "nic", "add", "rt-j", "nic2=direct:eth1,qbg=0/1/1")
    assert shown.returncode == 1 and "field nic.virtualport.managerid:" in shown.stderr
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-j", force=True))


def test_concurrent_starts_of_one_vm_do_not_both_succeed(manager, hosts):
    create_vm(manager, "rt-k", "nic1=ovirtmgmt")
    ready = threading.Barrier(4)

    def start(host: str) -> str:
        ready.wait()
        try:
            return api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-k", host=host)).host
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            return ""

    with futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(start, ["host1", "host2", "host1", "host2"]))
    winners = [r for r in results if r]
    assert len(winners) == 1
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="rt-k"))
    assert (vm.state, vm.host) == ("up", winners[0])
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-k", force=True))


def test_no_transaction_or_row_lock_is_held_while_an_agent_is_called(manager, hosts, monkeypatch):
    create_vm(manager, "rt-l", "nic1=ovirtmgmt")
    real_call = manager.app.agents.call_vm
    seen: list[tuple[int, bool]] = []

    def probing(host, endpoint, fn, **kw):
        with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
            open_transactions = conn.execute(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                      AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()""").fetchone()[0]
            conn.execute("SELECT 1 FROM vms WHERE name = 'rt-l' FOR UPDATE NOWAIT")   # raises if the row is locked
            busy = conn.execute("SELECT claim IS NOT NULL FROM vms WHERE name = 'rt-l'").fetchone()[0]
        seen.append((open_transactions, busy))
        return real_call(host, endpoint, fn, **kw)

    monkeypatch.setattr(manager.app.agents, "call_vm", probing)
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-l"))
    err = pytest.raises(grpc.RpcError, api(manager).AddNic, vms_pb2.AddNicRequest(
        vm="rt-l", nic=vms_pb2.Nic(name="nic2", network="ovirtmgmt"))).value   # the test driver cannot hot-plug
    assert "another request" not in err.details()
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-l", force=True))
    # DefineVm, StartVm, AttachNic, DestroyVm, UndefineVm: each with nothing open, the VM claimed instead
    assert seen == [(0, True)] * 5
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        assert conn.execute("SELECT claim FROM vms WHERE name = 'rt-l'").fetchone()[0] is None


def test_create_with_a_start_on_an_unknown_host_leaves_nothing(manager, hosts):
    err = pytest.raises(grpc.RpcError, api(manager).CreateVirtualMachine, vms_pb2.CreateVirtualMachineRequest(
        name="rt-h", nics=[vms_pb2.Nic(name="nic1", network="ovirtmgmt")], start=True, host="nohost")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "nohost" in err.details()
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0


def test_create_with_a_start_the_host_refuses_leaves_nothing(manager, hosts, tmp_path):
    create_vm(manager, "rt-i", "nic1=direct:eth9,mode=passthrough")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-i", host="host1"))
    err = pytest.raises(grpc.RpcError, api(manager).CreateVirtualMachine, vms_pb2.CreateVirtualMachineRequest(
        name="rt-j", nics=[vms_pb2.Nic(name="nic1", direct_nic="eth9", mode=vm_pb2.DIRECT_MODE_PASSTHROUGH)],
        start=True, host="host1")).value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "rt-i" in err.details()
    assert vm_rows(manager) == (1, 1) and leased(manager) == 1
    with pytest.raises(grpc.RpcError) as gone:
        _agent_vm(manager, "host1", tmp_path / "agent1.sock", "rt-j")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-i", force=True))
