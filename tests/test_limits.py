"""Every limit of virtfleet.rules: refused as INVALID_ARGUMENT naming the field, at the rule and at the door,
with nothing changed; garbage bytes are INVALID_ARGUMENT, not INTERNAL."""
from __future__ import annotations

import grpc
import psycopg
import pytest

from virtfleet import rules
from virtfleet.errors import InvalidArgument
from virtfleet.rpc import field_violations
from virtfleet.v1 import fleet_pb2, vms_pb2, vms_pb2_grpc
from agent.virt.connection import HostLimits, Hypervisor
from agent.virt.spec import VmSpec
from agent.virt.validation import validate_vm


@pytest.mark.parametrize("call, field", [
    (lambda: rules.vcpus(rules.MAX_VCPUS + 1), "vcpus"),
    (lambda: rules.vcpus(2**32 - 1), "vcpus"),
    (lambda: rules.vcpus(9, host_max=8), "vcpus"),
    (lambda: rules.memory_mib(rules.MAX_MEMORY_MIB + 1), "memory_mib"),
    (lambda: rules.memory_mib(2048, host_max=1024), "memory_mib"),
    (lambda: rules.timeout_s(rules.MAX_TIMEOUT_S + 1), "timeout_s"),
    (lambda: rules.timeout_s(2**32 - 1), "timeout_s"),
    (lambda: rules.description("x" * (rules.MAX_DESCRIPTION + 1)), "description"),
    (lambda: rules.pg_integer(2**31, "n"), "n"),
    (lambda: rules.count_within(rules.MAX_BOND_SLAVES + 1, rules.MAX_BOND_SLAVES, "slaves", "slaves"), "slaves"),
    (lambda: rules.vm_resources(0, 0, rules.MAX_VNICS_PER_VM + 1), "nics"),
    (lambda: rules.vm_resources(0, 2**31, 0, "spec"), "spec.vcpus"),
])
def test_each_limit_names_its_field(call, field):
    with pytest.raises(InvalidArgument) as err:
        call()
    assert err.value.field == field
    assert len(err.value.message) < 200


def test_limits_keep_their_defaults_and_edges():
    assert rules.vcpus(rules.MAX_VCPUS) == rules.MAX_VCPUS
    assert rules.timeout_s(0) == 0 and rules.timeout_s(rules.MAX_TIMEOUT_S) == rules.MAX_TIMEOUT_S
    rules.vm_resources(0, 0, 0)          # 0: the default or the source's
    assert rules.pg_integer(-2**31, "n") == -2**31


def test_the_agent_refuses_a_vm_larger_than_its_host():
    limits = Hypervisor("test:///default").limits()
    assert 0 < limits.max_vcpus <= rules.MAX_VCPUS and limits.memory_mib > 0
    with pytest.raises(InvalidArgument) as err:
        validate_vm(VmSpec(name="big", memory_mib=64, vcpus=limits.max_vcpus + 1), limits)
    assert err.value.field == "spec.vcpus"
    with pytest.raises(InvalidArgument) as err:
        validate_vm(VmSpec(name="big", memory_mib=2**32 - 1, vcpus=1), HostLimits())
    assert err.value.field == "spec.memory_mib"


def _networks(manager):
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        return conn.execute("SELECT name, description FROM networks ORDER BY name").fetchall()


def _refused(call) -> list[tuple[str, str]]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return field_violations(err.value)


def test_a_long_description_is_refused_at_the_door(manager):
    before = _networks(manager)
    violations = _refused(lambda: manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(
        network=fleet_pb2.LogicalNetwork(name="n1", description="d" * (rules.MAX_DESCRIPTION + 1)))))
    assert violations[0][0] == "network.description"
    assert _networks(manager) == before


def test_vm_sizes_beyond_the_limits_are_refused_and_nothing_is_made(manager):
    vms = vms_pb2_grpc.VmServiceStub(manager.channel)
    listed = vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest())
    for field, value in (("vcpus", 2**32 - 1), ("memory_mib", 2**32 - 1)):
        violations = _refused(lambda: vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name="vm1", **{field: value})))
        assert violations[0][0] == field
    assert vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest()) == listed


def test_garbage_bytes_are_invalid_argument_not_internal(manager):
    garbage = manager.channel.unary_unary("/virtfleet.v1.FleetService/ListNetworks",
                                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
    violations = _refused(lambda: garbage(b"\xff\xff\xff\xff\x0f", timeout=10))
    assert violations[0][0] == "request"
