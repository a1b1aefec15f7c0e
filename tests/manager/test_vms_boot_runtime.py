"""What the agent is sent and what its refusals become: a VM's boot source and domain type reach the real
agent's DefineVm; an agent's INVALID_ARGUMENT about them reaches the caller naming the admin's field.

The host is the agent's VM servicer on libvirt's test driver, served in this process over
mutual TLS as in test_vms_runtime.py; a server interceptor keeps a copy of each DefineVm
request on its way in (the agent itself answers). The kernel and initrd are real files,
since an agent checks that the paths it is given exist on its host. For the refusal, an
interceptor answers as an agent whose host lacks the kernel file (the test driver's agent
cannot be made to lack one), with the agent's own error mapping.
"""
from __future__ import annotations

from concurrent import futures

import grpc
import psycopg
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.errors import InvalidArgument  # noqa: E402
from virtfleet.rpc import field_violations, to_status  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import vm_pb2, vm_pb2_grpc, vms_pb2  # noqa: E402

from agent.rpc.vm import add_vm_service  # noqa: E402

from .vmhelpers import api, create_template, create_vm, leased, vm_rows, without_network_filters  # noqa: E402


class KeepDefineRequests(grpc.ServerInterceptor):
    """Keeps each DefineVm request's spec, then hands the call to the agent unchanged."""

    def __init__(self) -> None:
        self.specs: list[vm_pb2.VmSpec] = []

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not details.method.endswith("/DefineVm"):
            return handler
        inner = handler.unary_unary

        def define(request, context):
            kept = vm_pb2.VmSpec()
            kept.CopyFrom(request.spec)
            self.specs.append(kept)
            return inner(request, context)
        return handler._replace(unary_unary=define)


@pytest.fixture
def host(manager, tmp_path):
    """One enrolled host that is up, its agent's VM runtime on test:///default; yields the kept specs."""
    without_network_filters(manager)
    name, sock = "host1", tmp_path / "agent1.sock"
    key, csr = make_key_and_csr(name)
    material = TlsMaterial(manager.app.ca.cert_pem, manager.app.ca.sign_agent_csr(csr, name, "192.0.2.11"), key)
    kept = KeepDefineRequests()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[kept])
    servicer = add_vm_service(server, "test:///default")
    server.add_secure_port(f"unix://{sock}", material.server_credentials())
    server.start()
    with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
        conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                        SELECT id, %s, '192.0.2.11', %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                     (name, f"unix://{sock}"))
    yield kept
    channel = grpc.secure_channel(f"unix://{sock}", manager.app.ca.manager_material().channel_credentials(),
                                  options=[("grpc.ssl_target_name_override", name)])
    stub = vm_pb2_grpc.VmAgentServiceStub(channel)
    for vm in stub.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms:
        if vm.name.startswith("bt-"):
            if vm.state != vm_pb2.VM_STATE_SHUTOFF:
                stub.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name), timeout=5)
            stub.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name), timeout=5)
    channel.close()
    server.stop(grace=None).wait()
    servicer.close()


def test_the_agent_is_sent_the_vms_boot_source_and_domain_type(manager, host, tmp_path):
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd.gz"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    create_template(manager, "t1", "nic1=ovirtmgmt", boot=vm_pb2.BootSource(
        kernel=str(kernel), initrd=str(initrd), cmdline="console=ttyS0"), domain_type="qemu")
    create_vm(manager, "bt-a", template="t1")
    vm = api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="bt-a"))
    assert vm.state == "up"
    [spec] = host.specs
    assert (spec.name, spec.boot.kernel, spec.boot.initrd, spec.boot.cmdline, spec.domain_type) == (
        "bt-a", str(kernel), str(initrd), "console=ttyS0", "qemu")


def test_a_diskless_auto_vm_is_sent_no_boot_and_lets_the_agent_choose(manager, host):
    create_vm(manager, "bt-b", "nic1=ovirtmgmt", start=True)
    [spec] = host.specs
    assert not spec.HasField("boot") and spec.domain_type == ""


def test_a_running_vm_shows_what_its_guest_agent_calls_each_vnic(manager, host):
    """libvirt's test driver answers the guest-agent query for its domains as a guest would (one interface
    per vNIC, by MAC): each vNIC shows the guest's name and addresses, and the name is kept as last seen."""
    create_vm(manager, "bt-c", "nic1=ovirtmgmt", "nic2=ovirtmgmt", start=True)
    shown = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="bt-c"))
    assert shown.state == "up"
    assert all(n.guest_name and n.guest_ips for n in shown.nics), shown.nics
    assert len({n.guest_name for n in shown.nics}) == 2
    listed = {v.name: v for v in api(manager).ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest()).vms}
    assert [n.guest_name for n in listed["bt-c"].nics] == [n.guest_name for n in shown.nics]


class RefuseMissingKernel(grpc.ServerInterceptor):
    """Answers DefineVm (or StartVm) as an agent whose host lacks the kernel file does: INVALID_ARGUMENT
    `spec.boot.kernel`, through the same error mapping the agent uses (virtfleet.rpc.to_status)."""

    def __init__(self, method: str) -> None:
        self.method = method

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not details.method.endswith(f"/{self.method}"):
            return handler

        def refuse(request, context):
            context.abort_with_status(to_status(InvalidArgument("spec.boot.kernel", "/no/such/vmlinuz: no such "
                                                                                    "file on host host1")))
        return handler._replace(unary_unary=refuse)


@pytest.fixture
def refusing_host(manager, tmp_path, request):
    """host1, whose agent refuses the boot source at request.param (DefineVm or StartVm)."""
    name, sock = "host1", tmp_path / "agent1.sock"
    key, csr = make_key_and_csr(name)
    material = TlsMaterial(manager.app.ca.cert_pem, manager.app.ca.sign_agent_csr(csr, name, "192.0.2.11"), key)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[RefuseMissingKernel(request.param)])
    servicer = add_vm_service(server, "test:///default")
    server.add_secure_port(f"unix://{sock}", material.server_credentials())
    server.start()
    with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:
        conn.execute("""INSERT INTO hosts (cluster_id, name, address, endpoint, cert_fingerprint, status)
                        SELECT id, %s, '192.0.2.11', %s, 'test', 'up' FROM clusters WHERE name = 'Default'""",
                     (name, f"unix://{sock}"))
    channel = grpc.secure_channel(f"unix://{sock}", manager.app.ca.manager_material().channel_credentials(),
                                  options=[("grpc.ssl_target_name_override", name)])
    yield vm_pb2_grpc.VmAgentServiceStub(channel)
    channel.close()
    server.stop(grace=None).wait()
    servicer.close()


@pytest.mark.parametrize("refusing_host", ["DefineVm", "StartVm"], indirect=True)
def test_an_agents_refusal_of_the_kernel_reaches_the_caller_and_leaves_nothing(manager, refusing_host):
    boot = vm_pb2.BootSource(kernel="/no/such/vmlinuz")
    with pytest.raises(grpc.RpcError) as err:
        create_vm(manager, "bt-d", "nic1=ovirtmgmt", boot=boot, start=True)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["boot.kernel"]
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0          # create --start made nothing
    create_vm(manager, "bt-e", "nic1=ovirtmgmt", boot=boot)
    with pytest.raises(grpc.RpcError) as err:
        api(manager).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name="bt-e"))
    assert [f for f, _ in field_violations(err.value)] == ["boot.kernel"]
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="bt-e"))
    assert (vm.state, vm.host) == ("down", "")
    assert [v.name for v in refusing_host.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms
            if v.name.startswith("bt-")] == []                           # not left defined on the host
    api(manager).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="bt-e"))   # not left claimed
