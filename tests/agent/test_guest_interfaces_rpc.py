"""GetGuestInterfaces and boot sources through VmAgentService (mutual TLS, libvirt's test driver)."""
from __future__ import annotations

import grpc
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.rpc import field_violations  # noqa: E402
from virtfleet.v1 import vm_pb2  # noqa: E402

from tests.agent.test_vm_service import pki, rpc_error, spec, vm_name, vms  # noqa: E402,F401  (fixtures)


def test_unknown_vm_is_not_found(vms):
    err = rpc_error(vms.GetGuestInterfaces, vm_pb2.GetGuestInterfacesRequest(vm="svc-nobody"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_a_vm_that_is_not_running_is_a_failed_precondition(vms):
    name = vm_name()
    vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(name)), timeout=10)
    err = rpc_error(vms.GetGuestInterfaces, vm_pb2.GetGuestInterfacesRequest(vm=name))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "not running" in err.details()


def test_a_running_guest_reports_its_interfaces(vms):
    """The test driver's built-in running domain answers as an agent would."""
    found = vms.GetGuestInterfaces(vm_pb2.GetGuestInterfacesRequest(vm="test", timeout_s=1), timeout=10)
    assert found.agent_connected
    assert [(i.name, i.mac) for i in found.interfaces] == [("testnet0", "aa:bb:cc:dd:ee:ff")]


def test_a_bad_boot_source_names_its_field_and_defines_nothing(vms):
    name = vm_name()
    bad = spec(name)
    bad.boot.CopyFrom(vm_pb2.BootSource(kernel="/nonexistent/vmlinuz", cmdline="quiet"))
    err = rpc_error(vms.DefineVm, vm_pb2.DefineVmRequest(spec=bad))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err)] == ["spec.boot.kernel"]
    assert name not in {v.name for v in vms.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms}


def test_an_out_of_range_wait_is_refused(vms):
    err = rpc_error(vms.GetGuestInterfaces, vm_pb2.GetGuestInterfacesRequest(vm="test", timeout_s=3600))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
