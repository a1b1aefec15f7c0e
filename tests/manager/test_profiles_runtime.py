"""vNIC profiles on running VMs: the generation given at start, out of sync after an edit (VM and audit), link
state refused where libvirt cannot change it (real agents' VmAgentService on libvirt's test driver). SyncNics and
SetNicLink applied live need a libvirt that updates devices (the test driver does not): they are proven inside real
guests, tests/test_guest_profiles_e2e.py."""
from __future__ import annotations

import grpc
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.v1 import audit_pb2, audit_pb2_grpc, fleet_pb2, profiles_pb2, vms_pb2  # noqa: E402

from .test_profiles_api import create, profiles  # noqa: E402
from .test_vms_runtime import hosts  # noqa: E402,F401  (the fixture: two hosts with real agents)
from .vmhelpers import api, create_vm, db, without_network_filters  # noqa: E402


def running_vm_with_gold(manager) -> None:
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="vmnet")))
    create(manager, "gold", "vmnet")
    without_network_filters(manager)   # the agents run on libvirt's test driver, which has no nwfilter
    create_vm(manager, "rt-p", "nic1=vmnet,profile=gold", "nic2=vmnet")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-p"))


def edit_gold(manager, **settings) -> None:
    profiles(manager).UpdateVnicProfile(profiles_pb2.UpdateVnicProfileRequest(
        profile=profiles_pb2.VnicProfile(name="gold", **settings)))


def out_of_sync(manager) -> list[str]:
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="rt-p"))
    return [n.name for n in vm.nics if n.profile_out_of_sync]


def test_start_records_the_generation_and_an_edit_shows_out_of_sync_in_the_vm_and_the_audit(manager, hosts):
    running_vm_with_gold(manager)
    with db(manager) as conn:
        assert conn.execute("SELECT name, applied_profile_generation FROM vnics ORDER BY name").fetchall() == [
            ("nic1", 1), ("nic2", 1)]
    assert out_of_sync(manager) == []
    edit_gold(manager, isolated=True)
    assert out_of_sync(manager) == ["nic1"]
    findings = audit_pb2_grpc.AuditServiceStub(manager.channel).RunAudit(
        audit_pb2.RunAuditRequest(category="vnic-profile")).findings
    assert [(f.host, f.object, f.expected, f.found) for f in findings] == [
        ("host1", "vm rt-p vNIC nic1: profile gold", "generation 2", "generation 1")]
    assert "vm nic sync rt-p nic1" in findings[0].fix
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-p", force=True))
    assert out_of_sync(manager) == []      # a stopped VM gets the profile at its next start
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-p"))
    assert out_of_sync(manager) == []
    api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-p", force=True))


def test_link_on_a_passthrough_vnic_is_refused_before_any_agent_call(manager, hosts):
    create_vm(manager, "rt-q", "nic1=direct:eth1,mode=passthrough")
    api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="rt-q"))
    err = pytest.raises(grpc.RpcError, api(manager).SetNicLink,
                        vms_pb2.SetNicLinkRequest(vm="rt-q", nic="nic1", up=False)).value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("nic:")
    vm = api(manager).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name="rt-q", force=True))
    assert not vm.nics[0].link_down
