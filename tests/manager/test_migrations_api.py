"""Migration through the API against real agents on libvirt's test driver: everything refused before anything moves.

libvirt's test driver cannot migrate (and both "hosts" here share its one in-process
instance), so what is proven here is what happens before and around the agent's
MigrateVm: bad input, the precondition listing, the running row as the VM's claim, a
migration the source cannot carry out, and the settling of a row a dead manager left.
Real migrations are tests/test_migration_e2e.py's (lab hosts, real QEMU).
"""
from __future__ import annotations

from concurrent import futures

import grpc
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.errors import FailedPrecondition  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import fleet_pb2, vm_pb2, vm_pb2_grpc, vms_pb2  # noqa: E402

from agent.rpc.vm import add_vm_service  # noqa: E402
from manager.store import vms as vm_store  # noqa: E402

from .vmhelpers import api, create_vm, db, without_network_filters  # noqa: E402

PREFIX = "mg-"


@pytest.fixture
def hosts(manager, tmp_path):
    """host1 and host2, up, each an agent's VM runtime on test:///default; VM mg-a runs on host1."""
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
        with db(manager) as conn:
            conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                            SELECT id, %s, %s, %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                         (name, f"192.0.2.{10 + i}", f"unix://{sock}"))
        served.append((name, sock, server, servicer))
    create_vm(manager, "mg-a", "nic1=ovirtmgmt,pci=0000:00:03.0")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="mg-a", host="host1"))
    yield [s[0] for s in served]
    for name, sock, server, servicer in served[:1]:   # one shared test driver: one clean-up
        channel = grpc.secure_channel(f"unix://{sock}", manager.app.ca.manager_material().channel_credentials(),
                                      options=[("grpc.ssl_target_name_override", name)])
        stub = vm_pb2_grpc.VmAgentServiceStub(channel)
        for vm in stub.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms:
            if vm.name.startswith(PREFIX):
                if vm.state != vm_pb2.VM_STATE_SHUTOFF:
                    stub.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name), timeout=5)
                stub.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name), timeout=5)
        channel.close()
    for name, sock, server, servicer in served:
        server.stop(grace=None).wait()
        servicer.close()


def _migrate(manager, name: str = "mg-a", **kw) -> list[vms_pb2.MigrationProgress]:
    return list(api(manager).MigrateVirtualMachine(vms_pb2.MigrateVirtualMachineRequest(name=name, **kw),
                                                   timeout=60))


def _refused(manager, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        _migrate(manager, **kw)
    return err.value


def _record(manager, name: str = "mg-a") -> tuple:
    with db(manager) as conn:
        vm = conn.execute("""SELECT v.state, h.name, v.claim FROM vms v LEFT JOIN hosts h ON h.id = v.host_id
                              WHERE v.name = %s""", (name,)).fetchone()
        nics = conn.execute("""SELECT n.name, n.mac, n.pci_address, n.host_device FROM vnics n JOIN vms v
                                ON v.id = n.vm_id WHERE v.name = %s ORDER BY n.name""", (name,)).fetchall()
    return vm, nics


def _rows(manager) -> list[tuple]:
    with db(manager) as conn:
        return conn.execute("SELECT state, message FROM vm_migrations ORDER BY id").fetchall()


def _leave_running(manager, vm: str = "mg-a", source: str = "host1", dest: str = "host2") -> None:
    """A running row as a manager that died mid-migration leaves it."""
    with db(manager) as conn:
        conn.execute("""INSERT INTO vm_migrations (vm_id, source_host_id, dest_host_id)
                        SELECT v.id, s.id, d.id FROM vms v, hosts s, hosts d
                         WHERE v.name = %s AND s.name = %s AND d.name = %s""", (vm, source, dest))


@pytest.mark.parametrize("field,kw", [("max_downtime_ms", dict(max_downtime_ms=60_001)),
                                      ("bandwidth_mib_s", dict(bandwidth_mib_s=2**32 - 1)),
                                      ("timeout_s", dict(timeout_s=86_401)),
                                      ("post_copy", dict(post_copy=True, auto_converge=True))])
def test_bad_options_are_refused_naming_the_field_and_nothing_moves(manager, hosts, field, kw):
    before = _record(manager)
    err = _refused(manager, to="host2", **kw)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.details()
    assert _record(manager) == before and _rows(manager) == []


def test_unknown_vm_stopped_vm_own_host_and_unknown_host_are_refused_with_their_status(manager, hosts):
    assert _refused(manager, name="mg-nope", to="host2").code() == grpc.StatusCode.NOT_FOUND
    create_vm(manager, "mg-down")
    err = _refused(manager, name="mg-down", to="host2")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "not running" in err.details()
    err = _refused(manager, to="host1")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "runs on host host1 already" in err.details()
    err = _refused(manager, to="host9")
    assert err.code() == grpc.StatusCode.NOT_FOUND and "host9" in err.details() and "(to)" in err.details()
    assert _rows(manager) == []


def test_an_unreachable_destination_is_refused_naming_it(manager, hosts):
    with db(manager) as conn:
        conn.execute("UPDATE hosts SET status = 'unreachable' WHERE name = 'host2'")
    before = _record(manager)
    err = _refused(manager, to="host2")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "host2" in err.details() and "unreachable" in err.details()
    assert _record(manager) == before and _rows(manager) == []


def test_every_reason_the_destination_is_refused_comes_in_one_answer(manager, hosts):
    with db(manager) as conn:
        conn.execute("UPDATE hosts SET maintenance = 'maintenance', status = 'non-operational', "
                     "status_reason = 'required network blue is missing' WHERE name = 'host2'")
    err = _refused(manager, to="host2")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "host2" in err.details() and "maintenance" in err.details() and "blue" in err.details()
    err = _refused(manager)   # placement finds no other host: says why for each
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "host2" in err.details()
    assert _rows(manager) == []


def test_a_migrating_vm_refuses_other_changes_and_a_second_migration(manager, hosts):
    manager.app.migrations.stop()   # its settling thread would end the row this test stands for a migration
    _leave_running(manager)
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="mg-a"))
    assert vm.migrating_to == "host2"
    for change in (lambda: api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="mg-a")),
                   lambda: api(manager).RemoveNic(vms_pb2.RemoveNicRequest(vm="mg-a", nic="nic1")),
                   lambda: api(manager).SetNicLink(vms_pb2.SetNicLinkRequest(vm="mg-a", nic="nic1", up=False))):
        with pytest.raises(grpc.RpcError) as err:
            change()
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "being migrated to host2" in err.value.details() and "--cancel" in err.value.details()
    err = _refused(manager, to="host2")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "being migrated" in err.details()


def test_cancel_without_a_running_migration_is_refused(manager, hosts):
    with pytest.raises(grpc.RpcError) as err:
        api(manager).CancelMigration(vms_pb2.CancelMigrationRequest(name="mg-a"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no migration" in err.value.details()


def test_a_migration_the_source_cannot_carry_out_leaves_the_vm_where_it_was(manager, hosts):
    """The test driver cannot migrate (an agent from before migration answers UNIMPLEMENTED): the row fails
    with the agent's message, the VM's record is unchanged, the caller gets a status of its own."""
    before = _record(manager)
    err = _refused(manager, to="host2")
    assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.OK)
    assert "mg-a" in err.details() and "host1" in err.details()
    assert _record(manager) == before
    [(state, message)] = _rows(manager)
    assert state == "failed" and message
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="mg-a"))
    assert (vm.host, vm.migrating_to) == ("host1", "")
    manager.app.events.flush()
    with db(manager) as conn:
        actions = [r[0] for r in conn.execute("SELECT rpc FROM events WHERE object_name = 'mg-a' ORDER BY id")]
    assert "vm.migration_started" in actions and "vm.migration_failed" in actions


def test_a_row_left_running_is_settled_by_asking_both_hosts(manager, hosts):
    """Both test "hosts" share one driver, so both say the VM runs: the row fails naming both, the record
    stays where it was (the audit's vm-state finding is for the admin)."""
    _leave_running(manager)
    before = _record(manager)
    assert manager.app.migrations.settle_left_over() == 0
    [(state, message)] = _rows(manager)
    assert state == "failed" and "host1" in message and "host2" in message
    assert _record(manager) == before


def test_maintenance_is_refused_up_front_naming_each_vm_that_cannot_move(manager, hosts):
    with db(manager) as conn:
        conn.execute("UPDATE hosts SET status = 'unreachable' WHERE name = 'host2'")
    with pytest.raises(grpc.RpcError) as err:
        list(manager.fleet.SetHostMaintenance(fleet_pb2.SetHostMaintenanceRequest(name="host1"), timeout=60))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "mg-a" in err.value.details() and "host2" in err.value.details()
    with db(manager) as conn:
        assert conn.execute("SELECT maintenance FROM hosts WHERE name = 'host1'").fetchone()[0] == ""
    assert _rows(manager) == []


def test_maintenance_of_an_empty_host_ends_in_maintenance(manager, hosts):
    steps = list(manager.fleet.SetHostMaintenance(fleet_pb2.SetHostMaintenanceRequest(name="host2"), timeout=60))
    assert steps[-1].state == "maintenance" and steps[-1].remaining == 0
    with db(manager) as conn:
        assert conn.execute("SELECT maintenance FROM hosts WHERE name = 'host2'").fetchone()[0] == "maintenance"


def test_a_vm_that_fails_to_move_leaves_the_host_preparing_and_is_named(manager, hosts):
    """The test driver cannot migrate: maintenance streams the attempt, then fails naming the VM; the host
    stays 'preparing' (out of placement, VMs still on it) until maintenance is run again or it is activated."""
    steps = []
    with pytest.raises(grpc.RpcError) as err:
        for step in manager.fleet.SetHostMaintenance(fleet_pb2.SetHostMaintenanceRequest(name="host1"), timeout=60):
            steps.append(step)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "mg-a" in err.value.details() and "preparing" in err.value.details()
    assert [(s.vm, s.state) for s in steps] == [("mg-a", "migrating"), ("mg-a", "failed")]
    assert steps[0].destination == "host2"
    with db(manager) as conn:
        assert conn.execute("SELECT maintenance FROM hosts WHERE name = 'host1'").fetchone()[0] == "preparing"
    assert _record(manager)[0][1] == "host1"


def test_parallel_choices_count_memory_promised_to_running_migrations(manager, hosts):
    """host2 has room for mg-a alone; once mg-b migrates there (its row running, the VM still recorded on
    host1), the scheduler counts mg-b's 64 MiB as promised and host2 cannot also take mg-a."""
    create_vm(manager, "mg-b", memory_mib=64)
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="mg-b", host="host1"))
    manager.app.migrations.stop()
    with db(manager) as conn:
        vm = vm_store.get_vm(conn, "mg-a")
        used = conn.execute("SELECT coalesce(sum(v.memory_mib), 0) FROM vms v JOIN hosts h ON h.id = v.host_id "
                            "WHERE h.name = 'host2'").fetchone()[0]
        conn.execute("UPDATE hosts SET memory_total_mib = %s WHERE name = 'host2'", (used + vm.memory_mib,))
    assert manager.app.migrations.choose_destination(vm, frozenset({"host1"})) == "host2"
    _leave_running(manager, vm="mg-b")
    with pytest.raises(FailedPrecondition) as err:
        manager.app.migrations.choose_destination(vm, frozenset({"host1"}))
    assert "memory" in str(err.value) and "host2" in str(err.value)
