"""The audit API over a real socket on a real manager: filters, status codes, the fields they name."""
from __future__ import annotations

import grpc
import pytest

from virtfleet.rpc import field_violations
from virtfleet.enroll import make_key_and_csr
from virtfleet.v1 import audit_pb2, audit_pb2_grpc, fleet_pb2


def _audit(manager) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(manager.channel)


def _enroll_silent_host(manager, tmp_path, name="host1", address="192.0.2.11"):
    """A host whose agent never answers: its endpoint is a socket nobody listens on."""
    _, csr = make_key_and_csr(name)
    manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name=name, address=address, csr_pem=csr,
                                                         endpoint=f"unix://{tmp_path}/{name}.sock"))


def test_an_empty_fleet_has_no_findings(manager):
    report = _audit(manager).RunAudit(audit_pb2.RunAuditRequest())
    assert (list(report.findings), report.hosts, report.total) == ([], 0, 0)


def test_a_host_that_never_reported_is_unreachable_and_cannot_be_auto_fixed(manager, tmp_path):
    _enroll_silent_host(manager, tmp_path)
    report = _audit(manager).RunAudit(audit_pb2.RunAuditRequest(host="host1"))
    assert [(f.category, f.severity, f.host, f.found) for f in report.findings] == [
        ("unreachable", "error", "host1", "never reported")]
    with pytest.raises(grpc.RpcError) as err:
        _audit(manager).FixFinding(audit_pb2.FixFindingRequest(id=report.findings[0].id, plan=True))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_filters_select_by_host_and_category(manager, tmp_path):
    _enroll_silent_host(manager, tmp_path, "host1", "192.0.2.11")
    _enroll_silent_host(manager, tmp_path, "host2", "192.0.2.12")
    stub = _audit(manager)
    assert [f.host for f in stub.RunAudit(audit_pb2.RunAuditRequest(host="host2")).findings] == ["host2"]
    assert stub.RunAudit(audit_pb2.RunAuditRequest(category="network")).findings == []
    cached = stub.ListFindings(audit_pb2.ListFindingsRequest(category="unreachable"))
    assert sorted(f.host for f in cached.findings) == ["host1", "host2"] and cached.total == 2


def test_unknown_category_names_the_field(manager):
    with pytest.raises(grpc.RpcError) as err:
        _audit(manager).RunAudit(audit_pb2.RunAuditRequest(category="colour"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(err.value)] == ["category"]


def test_fixing_an_unknown_finding_is_not_found_and_an_empty_id_names_the_field(manager):
    with pytest.raises(grpc.RpcError) as err:
        _audit(manager).FixFinding(audit_pb2.FixFindingRequest(id="0123456789"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        _audit(manager).FixFinding(audit_pb2.FixFindingRequest(id=" "))
    assert [field for field, _ in field_violations(err.value)] == ["id"]


def test_two_vms_given_the_same_mac_are_a_datacenter_duplicate(manager):
    import psycopg

    with psycopg.connect(manager.app.pool.conninfo) as conn:
        if not conn.execute("SELECT to_regclass('vnics') IS NOT NULL").fetchone()[0]:
            pytest.skip("no VM tables in this schema")
        cluster = conn.execute("SELECT id FROM clusters WHERE name = 'Default'").fetchone()[0]
        net = conn.execute("SELECT id FROM networks WHERE name = 'ovirtmgmt'").fetchone()[0]
        for vm in ("web1", "web2"):
            vm_id = conn.execute("INSERT INTO vms (name, cluster_id, memory_mib, vcpus) VALUES (%s, %s, 64, 1) "
                                 "RETURNING id", (vm, cluster)).fetchone()[0]
            conn.execute("INSERT INTO vnics (vm_id, name, position, kind, network_id, mac) "
                         "VALUES (%s, 'nic1', 0, 'bridge', %s, '52:54:00:aa:bb:01')", (vm_id, net))
    findings = _audit(manager).RunAudit(audit_pb2.RunAuditRequest(category="mac-duplicate")).findings
    assert [(f.object, f.found, f.severity) for f in findings] == [
        ("MAC 52:54:00:aa:bb:01", "vNICs web1/nic1, web2/nic1", "error")]


def test_a_vm_whose_nic_order_differs_from_its_template_is_found(manager):
    import psycopg

    with psycopg.connect(manager.app.pool.conninfo) as conn:
        if not conn.execute("SELECT to_regclass('template_nics') IS NOT NULL").fetchone()[0]:
            pytest.skip("no template tables in this schema")
        cluster = conn.execute("SELECT id FROM clusters WHERE name = 'Default'").fetchone()[0]
        dc = conn.execute("SELECT id FROM datacenters WHERE name = 'Default'").fetchone()[0]
        net = conn.execute("SELECT id FROM networks WHERE name = 'ovirtmgmt'").fetchone()[0]
        tpl = conn.execute("INSERT INTO templates (name, datacenter_id, memory_mib, vcpus) VALUES ('tpl', %s, 64, 1) "
                           "RETURNING id", (dc,)).fetchone()[0]
        for position, (name, pci) in enumerate([("nic1", "0000:00:03.0"), ("nic2", "0000:00:04.0")]):
            conn.execute("INSERT INTO template_nics (template_id, name, position, kind, network, pci_address) "
                         "VALUES (%s, %s, %s, 'bridge', 'ovirtmgmt', %s)", (tpl, name, position, pci))
        for vm, pcis in (("good", ("0000:00:03.0", "0000:00:04.0")), ("swapped", ("0000:00:04.0", "0000:00:03.0"))):
            vm_id = conn.execute(
                "INSERT INTO vms (name, cluster_id, memory_mib, vcpus, source_kind, source_name, source_template_id) "
                "VALUES (%s, %s, 64, 1, 'template', 'tpl', %s) RETURNING id", (vm, cluster, tpl)).fetchone()[0]
            for position, (name, pci) in enumerate(zip(("nic1", "nic2"), pcis)):
                mac = f"52:54:00:00:{vm_id:02x}:{position + 1:02x}"
                conn.execute("INSERT INTO vnics (vm_id, name, position, kind, network_id, mac, pci_address) "
                             "VALUES (%s, %s, %s, 'bridge', %s, %s, %s)", (vm_id, name, position, net, mac, pci))
    found = _audit(manager).RunAudit(audit_pb2.RunAuditRequest(category="nic-order")).findings
    assert found and {f.object.split(":")[0] for f in found} == {"vm swapped"}
    assert all(f.severity == "warning" and f.host == "" for f in found)


def test_the_audit_command_prints_a_table_and_json(manager, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).with_name("virtfleet"))
    _enroll_silent_host(manager, tmp_path)
    table = subprocess.run([cli, "--manager", manager.target, "audit"], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "unreachable" in table.stdout and "host1" in table.stdout and "never" in table.stdout
    as_json = subprocess.run([cli, "--manager", manager.target, "audit", "--category", "unreachable", "-o", "json"],
                             capture_output=True, text=True, timeout=60)
    assert [f["host"] for f in json.loads(as_json.stdout)["findings"]] == ["host1"]
    bad = subprocess.run([cli, "--manager", manager.target, "audit", "fix", "0000000000", "--plan"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr
