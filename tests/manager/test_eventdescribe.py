"""What a row of the audit trail says of each kind of call: its object, and a summary without secrets."""
from __future__ import annotations

import hashlib

import pytest

from manager.auth.roles import READS, REQUIRED_ROLE
from manager.domain.eventdescribe import STRING_MAX, describe, split_method
from manager.service.events import is_event
from virtfleet.v1 import audit_pb2, fleet_pb2, hostnet_pb2, macpool_pb2, vms_pb2

F, V, M, A = "/virtfleet.v1.FleetService/", "/virtfleet.v1.VmService/", "/virtfleet.v1.MacPoolService/", \
    "/virtfleet.v1.AuditService/"


@pytest.mark.parametrize("method, request_, kind, name", [
    (F + "DeleteHost", fleet_pb2.DeleteHostRequest(name="h1"), "host", "h1"),
    (F + "SetupHostNetworks", fleet_pb2.SetupHostNetworksRequest(host="h2", detach=["a"]), "host", "h2"),
    (F + "SetupHostManagementNetwork", fleet_pb2.SetupHostManagementNetworkRequest(name="h3"), "host", "h3"),
    (F + "CreateNetwork", fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet", vlan=7)),
     "network", "vmnet"),
    (F + "DeleteNetwork", fleet_pb2.DeleteNetworkRequest(name="vmnet"), "network", "vmnet"),
    (V + "StopVirtualMachine", vms_pb2.StopVirtualMachineRequest(name="web1", force=True), "vm", "web1"),
    (V + "CreateVirtualMachines", vms_pb2.CreateVirtualMachinesRequest(name="batch", count=3), "vm", "batch"),
    (V + "AddNic", vms_pb2.AddNicRequest(vm="web1", nic=vms_pb2.Nic(name="nic2", network="vmnet")), "vm", "web1"),
    (V + "RemoveNic", vms_pb2.RemoveNicRequest(vm="web1", nic="nic2"), "vm", "web1"),
    (V + "CreateTemplate", vms_pb2.CreateTemplateRequest(name="tpl", from_vm="web1"), "template", "tpl"),
    (V + "DeleteTemplate", vms_pb2.DeleteTemplateRequest(name="tpl"), "template", "tpl"),
    (V + "CreateSnapshot", vms_pb2.CreateSnapshotRequest(vm="web1", name="s1"), "snapshot", "s1"),
    (V + "RestoreSnapshot", vms_pb2.RestoreSnapshotRequest(name="s1"), "snapshot", "s1"),
    (M + "CreateMacPool", macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(name="lab")), "macpool", "lab"),
    (M + "AddMacPoolRange", macpool_pb2.MacPoolRangeRequest(name="lab"), "macpool", "lab"),
    (M + "SetClusterMacPool", macpool_pb2.SetClusterMacPoolRequest(cluster="c1", mac_pool="lab"), "cluster", "c1"),
    (A + "FixFinding", audit_pb2.FixFindingRequest(id="abc123", plan=True), "finding", "abc123"),
])
def test_each_family_names_its_object(method, request_, kind, name):
    d = describe(method, request_)
    assert (d.object_kind, d.object_name) == (kind, name)


def test_the_summary_is_what_was_asked():
    d = describe(F + "SetupHostNetworks", fleet_pb2.SetupHostNetworksRequest(
        host="h1", attach=[fleet_pb2.HostAttachment(network="vmnet", nic="eth1")], detach=["old"],
        bonds=[hostnet_pb2.Bond(name="bond0", slaves=["eth2", "eth3"], options={"miimon": "100"})],
        connectivity_timeout_s=30))
    assert d.summary == {"host": "h1", "attach": [{"network": "vmnet", "nic": "eth1"}], "detach": ["old"],
                         "bonds": [{"name": "bond0", "slaves": ["eth2", "eth3"], "options": {"miimon": "100"}}],
                         "connectivity_timeout_s": 30}


def test_a_csr_is_never_in_the_summary_only_its_length_and_hash():
    csr = b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB" + b"x" * 600 + b"\n-----END CERTIFICATE REQUEST-----\n"
    d = describe(F + "EnrollHost", fleet_pb2.EnrollHostRequest(name="h1", address="192.0.2.10", csr_pem=csr))
    assert (d.object_kind, d.object_name) == ("host", "h1")
    assert d.summary["csr_pem"] == {"length": len(csr), "sha256": hashlib.sha256(csr).hexdigest()[:16]}
    assert "MIIB" not in repr(d.summary) and "BEGIN" not in repr(d.summary)
    assert d.summary["address"] == "192.0.2.10"


def test_long_strings_and_lists_are_cut():
    d = describe(F + "SetupHostNetworks", fleet_pb2.SetupHostNetworksRequest(
        host="h1", detach=[f"n{i}" for i in range(50)]))
    assert len(d.summary["detach"]) == 21 and d.summary["detach"][-1] == "… 30 more"
    d = describe(V + "CreateVirtualMachine", vms_pb2.CreateVirtualMachineRequest(name="x" * 1000))
    assert len(d.object_name) == 1000   # the object is exact; the summary is bounded
    assert d.summary["name"].startswith("x" * STRING_MAX + "…")


def test_an_unknown_method_still_gets_an_object_from_the_usual_fields():
    d = describe("/virtfleet.v1.AdminService/RevokeAdmin", fleet_pb2.GetHostRequest(name="alice"))
    assert (d.object_kind, d.object_name) == ("admin", "alice")
    d = describe("/virtfleet.v1.Mystery/DoIt", fleet_pb2.GetHostNetworksRequest(host="h9"))
    assert (d.object_kind, d.object_name) == ("host", "h9")
    assert describe("/x.Y/Stream", iter(())).summary == {}
    assert split_method("host.unreachable") == ("", "host.unreachable")


def test_changes_and_refusals_are_events_reads_are_not():
    assert is_event(F + "CreateNetwork", "OK") and is_event(F + "CreateNetwork", "NOT_FOUND")
    assert not is_event(F + "GetNetwork", "OK") and not is_event(F + "GetNetwork", "NOT_FOUND")
    assert is_event(F + "GetNetwork", "PERMISSION_DENIED") and is_event(F + "ListHosts", "UNAUTHENTICATED")
    assert is_event(A + "RunAudit", "OK")   # computes findings and is worth knowing who asked
    assert is_event("/virtfleet.v1.Unknown/Method", "OK")
    assert all(m in REQUIRED_ROLE for m in READS)
