"""VMs reconciled with what hosts run: a real manager, real PostgreSQL, real agent processes (libvirt's test driver).

The record is made to disagree with the hosts the ways a crash, a lost reply or an
admin on the host would (a row written down while the guest runs, a domain destroyed
with `virsh`, an agent that restarted empty), and each case must end as its rule says:
adopted, marked down, left alone, or reported as a `vm-state` finding.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.domain.vmstate import Rule  # noqa: E402
from virtfleet.v1 import audit_pb2, audit_pb2_grpc, vms_pb2  # noqa: E402

from tests.fixtures.manager import running_manager  # noqa: E402

from .testdriver_hosts import TestDriverHost, no_network_filters, until  # noqa: E402
from .vmhelpers import api, create_template, create_vm  # noqa: E402


@pytest.fixture
def fleet(empty_db, netns_factory):
    """A manager following two test-driver hosts (host1, host2) that are up."""
    with running_manager(empty_db) as manager, tempfile.TemporaryDirectory(prefix="vft-rc-") as d:
        no_network_filters(empty_db)
        hosts = {}
        try:
            for i in (1, 2):
                root = Path(d) / f"h{i}"
                root.mkdir()
                host = hosts[f"host{i}"] = TestDriverHost(manager.app.ca, f"host{i}", f"192.0.2.{10 + i}", root,
                                                          netns_factory().name).start()
                host.enroll(empty_db)
                manager.app.monitor.watch(host.name, host.endpoint)
            for name in hosts:
                until(lambda: manager.app.monitor.current(name) is not None, f"{name}'s first report")
            yield manager, hosts
        finally:
            for host in hosts.values():
                host.close()


def sql(manager, query: str, *args):
    with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
        cur = conn.execute(query, args)
        return cur.fetchall() if cur.description else []


def record(manager, vm: str) -> tuple[str, str | None]:
    return tuple(sql(manager, "SELECT v.state, h.name FROM vms v LEFT JOIN hosts h ON h.id = v.host_id "
                              "WHERE v.name = %s", vm)[0])


def devices(manager, vm: str) -> list[tuple[str, str | None, str | None]]:
    return [tuple(r) for r in sql(manager, "SELECT n.name, n.pci_address::text, n.host_device FROM vnics n "
                                           "JOIN vms v ON v.id = n.vm_id WHERE v.name = %s ORDER BY n.position", vm)]


def events(manager, action: str) -> list[tuple[str, str]]:
    manager.app.events.flush()
    return [tuple(r) for r in sql(manager, "SELECT object_name, message FROM events WHERE rpc = %s", action)]


def start(manager, vm: str, host: str) -> None:
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=vm, host=host), timeout=30)


def rules_of(report, vm: str) -> list[Rule]:
    return [v.rule for v in report.verdicts if v.vm == vm]


def test_a_guest_running_where_the_record_says_down_is_adopted_with_its_pci_addresses(fleet):
    manager, hosts = fleet
    create_template(manager, "t1", "nic1=ovirtmgmt,pci=0000:00:05.0", "nic2=ovirtmgmt,pci=0000:00:03.0")
    create_vm(manager, "rc-a", template="t1")
    start(manager, "rc-a", "host2")
    started = devices(manager, "rc-a")
    # the record lost the start (as a manager killed before recording it leaves it)
    sql(manager, "UPDATE vms SET state = 'down', host_id = NULL WHERE name = 'rc-a'")
    sql(manager, "UPDATE vnics SET host_device = NULL, pci_address = NULL")
    manager.app.reconciler.settle("test")
    assert record(manager, "rc-a") == ("up", "host2")
    assert devices(manager, "rc-a") == started and all(dev for _, _, dev in started)
    assert [(vm, "host2" in message) for vm, message in events(manager, "vm.adopted")] == [("rc-a", True)]


def test_a_guest_destroyed_behind_the_managers_back_is_marked_down(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-b", "nic1=ovirtmgmt")
    start(manager, "rc-b", "host1")
    hosts["host1"].destroy("rc-b")
    report = manager.app.reconciler.settle("test")
    assert rules_of(report, "rc-b") == [Rule.MARK_DOWN]
    assert record(manager, "rc-b") == ("down", None)
    assert [dev for _, _, dev in devices(manager, "rc-b")] == [None]
    assert [vm for vm, _ in events(manager, "vm.marked_down")] == ["rc-b"]
    start(manager, "rc-b", "host2")   # and it starts again as any stopped VM
    assert record(manager, "rc-b") == ("up", "host2")


def test_a_guest_that_moved_outside_the_manager_is_recorded_where_it_runs(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-c", "nic1=ovirtmgmt")
    start(manager, "rc-c", "host1")
    sql(manager, "UPDATE vms SET host_id = (SELECT id FROM hosts WHERE name = 'host2') WHERE name = 'rc-c'")
    report = manager.app.reconciler.settle("test")
    assert rules_of(report, "rc-c") == [Rule.ADOPT_MOVED]
    assert record(manager, "rc-c") == ("up", "host1")
    assert [vm for vm, _ in events(manager, "vm.adopted")] == ["rc-c"]


def test_a_guest_on_two_hosts_and_a_domain_nobody_recorded_are_audit_findings_and_nothing_changes(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-d", "nic1=ovirtmgmt")
    start(manager, "rc-d", "host1")
    sql(manager, "UPDATE vms SET state = 'down', host_id = NULL WHERE name = 'rc-d'")
    start(manager, "rc-d", "host2")    # the manager believes it stopped: now it runs twice
    assert "rc-d" in hosts["host1"].running() and "rc-d" in hosts["host2"].running()
    report = audit_pb2_grpc.AuditServiceStub(manager.channel).RunAudit(
        audit_pb2.RunAuditRequest(category="vm-state"), timeout=60)
    by_object = {(f.object, f.host): f for f in report.findings}
    twice = by_object[("vm rc-d", "")]
    assert (twice.severity, twice.found) == ("error", "running on host1 and host2")
    # the test driver's own domain "test" runs on each host: the record has no VM of that name
    assert {(f.severity, f.host) for (obj, _), f in by_object.items() if obj == "domain test"} == {
        ("warning", "host1"), ("warning", "host2")}
    assert record(manager, "rc-d") == ("up", "host2")
    assert events(manager, "vm.adopted") == [] and events(manager, "vm.marked_down") == []


def test_a_vm_being_changed_or_migrated_is_left_alone(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-e", "nic1=ovirtmgmt")
    create_vm(manager, "rc-f", "nic1=ovirtmgmt")
    start(manager, "rc-e", "host1")
    start(manager, "rc-f", "host1")
    # rc-e: a start of this manager's is under way (a live claim); rc-f: a migration runs
    sql(manager, "UPDATE vms SET state = 'down', host_id = NULL, claim = gen_random_uuid(), claimed_at = now() "
                 "WHERE name = 'rc-e'")
    sql(manager, "INSERT INTO vm_migrations (vm_id, source_host_id, dest_host_id) SELECT v.id, v.host_id, h.id "
                 "FROM vms v, hosts h WHERE v.name = 'rc-f' AND h.name = 'host2'")
    hosts["host1"].destroy("rc-f")
    report = manager.app.reconciler.settle("test")
    assert (rules_of(report, "rc-e"), rules_of(report, "rc-f")) == ([Rule.BUSY], [Rule.MIGRATING])
    assert (record(manager, "rc-e"), record(manager, "rc-f")) == (("down", None), ("up", "host1"))


def test_the_vms_of_a_host_that_does_not_answer_are_not_judged(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-g", "nic1=ovirtmgmt")
    start(manager, "rc-g", "host2")
    hosts["host2"].kill()     # its domains went with it, but nobody can ask it
    report = manager.app.reconciler.settle("test")
    assert rules_of(report, "rc-g") == [Rule.UNKNOWN] or rules_of(report, "rc-g") == []
    assert record(manager, "rc-g") == ("up", "host2")
    assert report.answered == ["host1"]


def test_a_host_whose_agent_comes_back_empty_has_its_vms_marked_down_without_being_asked(fleet):
    manager, hosts = fleet
    create_vm(manager, "rc-h", "nic1=ovirtmgmt")
    start(manager, "rc-h", "host1")
    hosts["host1"].kill()
    hosts["host1"].start()    # a new agent run (a new stream epoch), its test driver empty: a host that rebooted
    until(lambda: record(manager, "rc-h") == ("down", None), "the VM marked down after host1 came back")
    assert [vm for vm, _ in events(manager, "vm.marked_down")] == ["rc-h"]


def test_a_start_that_got_no_answer_asks_for_a_pass(fleet):
    manager, hosts = fleet
    asked: list[str] = []
    manager.app.vm_runtime._no_answer = asked.append   # the hook's receiver; the pass itself is tested above
    create_vm(manager, "rc-i", "nic1=ovirtmgmt")
    hosts["host2"].kill()
    with pytest.raises(Exception) as failed:
        manager.app.vm_runtime.start("rc-i", host="host2")
    assert "unreachable" in str(failed.value)
    assert len(asked) == 1 and "rc-i" in asked[0] and "host2" in asked[0]
