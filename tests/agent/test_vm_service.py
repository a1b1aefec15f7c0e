"""VmAgentService over real mutual TLS, against libvirt's test driver (test:///default).

Most tests serve the servicer in this process on a unix socket with the agent's
certificate; one starts the real agent process (in a throwaway network namespace)
to prove the agent registers the service beside AgentService.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc
import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from virtfleet.rpc import field_violations  # noqa: E402
from manager.pki import CertificateAuthority
from virtfleet.enroll import make_key_and_csr  # noqa: E402
from virtfleet.tls import TlsMaterial  # noqa: E402
from virtfleet.v1 import vm_pb2, vm_pb2_grpc  # noqa: E402

from agent.rpc.vm import add_vm_service  # noqa: E402

HOST = "host1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("vmpki")
    ca = CertificateAuthority.load_or_create(root / "ca")
    key, csr = make_key_and_csr(HOST)
    agent = TlsMaterial(ca.cert_pem, ca.sign_agent_csr(csr, HOST, "192.0.2.11"), key)
    agent.save(root / "agent")
    return {"root": root, "ca": ca, "agent": agent, "manager": ca.manager_material()}


def _stub(sock: Path, creds: grpc.ChannelCredentials) -> tuple[grpc.Channel, vm_pb2_grpc.VmAgentServiceStub]:
    channel = grpc.secure_channel(f"unix://{sock}", creds, options=[("grpc.ssl_target_name_override", HOST)])
    return channel, vm_pb2_grpc.VmAgentServiceStub(channel)


@pytest.fixture(scope="module")
def vms(pki):
    sock = pki["root"] / "vm-agent.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = add_vm_service(server, "test:///default")
    server.add_secure_port(f"unix://{sock}", pki["agent"].server_credentials())
    server.start()
    channel, stub = _stub(sock, pki["manager"].channel_credentials())
    yield stub
    for vm in stub.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms:
        if vm.name.startswith("svc-"):
            if vm.state != vm_pb2.VM_STATE_SHUTOFF:
                stub.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name), timeout=5)
            stub.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name), timeout=5)
    channel.close()
    server.stop(grace=None).wait()
    servicer.close()


def vm_name() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


def spec(name: str, *nics: vm_pb2.VNic) -> vm_pb2.VmSpec:
    return vm_pb2.VmSpec(name=name, memory_mib=64, vcpus=1, nics=nics or [
        vm_pb2.VNic(name="nic1", kind=vm_pb2.VNIC_KIND_BRIDGE, source="ovirtmgmt", mac="52:54:00:20:00:01",
                    pci=vm_pb2.PciAddress(slot=3)),
        vm_pb2.VNic(name="nic2", kind=vm_pb2.VNIC_KIND_DIRECT, source="eth0", mode=vm_pb2.DIRECT_MODE_PRIVATE,
                    vlan=2, qbg=vm_pb2.Virtualport8021Qbg(managerid=11, typeid=1193047, typeidversion=2)),
    ])


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, timeout=5)
    return err.value


def test_define_start_read_back_stop_undefine(vms):
    name = vm_name()
    defined = vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(name)), timeout=5)
    assert defined.state == vm_pb2.VM_STATE_SHUTOFF and defined.persistent
    assert [n.name for n in defined.nics] == ["nic1", "nic2"]
    uuid.UUID(defined.nics[1].vsi_instanceid)  # generated for the new VSI instance

    started = vms.StartVm(vm_pb2.StartVmRequest(name=name), timeout=5)
    assert started.state == vm_pb2.VM_STATE_RUNNING
    nic1, nic2 = started.nics
    assert (nic1.mac, nic1.alias, nic1.pci.slot, nic1.kind) == ("52:54:00:20:00:01", "ua-nic1", 3,
                                                                vm_pb2.VNIC_KIND_BRIDGE)
    assert nic1.host_device and nic2.host_device
    assert (nic2.kind, nic2.mode, nic2.source) == (vm_pb2.VNIC_KIND_DIRECT, vm_pb2.DIRECT_MODE_PRIVATE, "eth0")
    assert not nic2.HasField("pci")  # the test driver assigns none

    listed = {v.name: v.state for v in vms.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms}
    assert listed[name] == vm_pb2.VM_STATE_RUNNING

    stopped = vms.StopVm(vm_pb2.StopVmRequest(name=name, timeout_s=5), timeout=10)
    assert stopped.vm.state == vm_pb2.VM_STATE_SHUTOFF and not stopped.destroyed
    vms.UndefineVm(vm_pb2.UndefineVmRequest(name=name), timeout=5)
    assert rpc_error(vms.GetVm, vm_pb2.GetVmRequest(name=name)).code() == grpc.StatusCode.NOT_FOUND


def test_start_paused(vms):
    name = vm_name()
    vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(name)), timeout=5)
    assert vms.StartVm(vm_pb2.StartVmRequest(name=name, paused=True), timeout=5).state == vm_pb2.VM_STATE_PAUSED
    assert vms.DestroyVm(vm_pb2.DestroyVmRequest(name=name), timeout=5).state == vm_pb2.VM_STATE_SHUTOFF


@pytest.mark.parametrize("change, field", [
    (lambda n: setattr(n.qbg, "managerid", 0), "spec.nics[1].qbg.managerid"),
    (lambda n: setattr(n.qbg, "managerid", 300), "spec.nics[1].qbg.managerid"),
    (lambda n: setattr(n.qbg, "typeid", 1 << 24), "spec.nics[1].qbg.typeid"),
    (lambda n: setattr(n.qbg, "typeidversion", 256), "spec.nics[1].qbg.typeidversion"),
    (lambda n: setattr(n.qbg, "instanceid", "nope"), "spec.nics[1].qbg.instanceid"),
    (lambda n: setattr(n, "vlan", 0), "spec.nics[1].vlan"),
    (lambda n: n.qbh.SetInParent(), "spec.nics[1].qbh.profileid"),
    (lambda n: setattr(n, "kind", vm_pb2.VNIC_KIND_UNSPECIFIED), "spec.nics[1].kind"),
])
def test_bad_vnic_is_invalid_argument_naming_vnic_and_field_and_defines_nothing(vms, change, field):
    name = vm_name()
    request = spec(name)
    change(request.nics[1])
    err = rpc_error(vms.DefineVm, vm_pb2.DefineVmRequest(spec=request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(violation_field, description)] = field_violations(err)
    assert violation_field == field and "'nic2'" in description
    assert name not in [v.name for v in vms.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms]


def test_passthrough_device_held_by_another_vm_is_failed_precondition_naming_it(vms):
    holder, other = vm_name(), vm_name()
    pt = vm_pb2.VNic(name="pt", kind=vm_pb2.VNIC_KIND_DIRECT, source="eth9", mode=vm_pb2.DIRECT_MODE_PASSTHROUGH)
    vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(holder, pt)), timeout=5)
    err = rpc_error(vms.DefineVm, vm_pb2.DefineVmRequest(spec=spec(other, pt)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert holder in err.details() and "eth9" in err.details()


def test_wrong_state_and_unknown_names(vms):
    name = vm_name()
    vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(name)), timeout=5)
    assert rpc_error(vms.StopVm, vm_pb2.StopVmRequest(name=name)).code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rpc_error(vms.StartVm, vm_pb2.StartVmRequest(name="svc-none")).code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(vms.StartVm, vm_pb2.StartVmRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err)[0][0] == "name"
    err = rpc_error(vms.DetachNic, vm_pb2.DetachNicRequest(vm=name, nic="nic9"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nic9" in err.details()


def test_attach_and_detach_nic(vms):
    name = vm_name()
    vms.DefineVm(vm_pb2.DefineVmRequest(spec=spec(name)), timeout=5)
    nic3 = vm_pb2.VNic(name="nic3", kind=vm_pb2.VNIC_KIND_VIRTUAL_NETWORK, source="default", mac="52:54:00:20:00:03")
    added = vms.AttachNic(vm_pb2.AttachNicRequest(vm=name, nic=nic3), timeout=5)
    assert [n.name for n in added.nics] == ["nic1", "nic2", "nic3"]
    err = rpc_error(vms.AttachNic, vm_pb2.AttachNicRequest(vm=name, nic=nic3))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err)[0][0] == "nic.name"
    removed = vms.DetachNic(vm_pb2.DetachNicRequest(vm=name, nic="nic1"), timeout=5)
    assert [n.name for n in removed.nics] == ["nic2", "nic3"]
    vms.StartVm(vm_pb2.StartVmRequest(name=name), timeout=5)
    err = rpc_error(vms.AttachNic, vm_pb2.AttachNicRequest(
        vm=name, nic=vm_pb2.VNic(name="nic4", kind=vm_pb2.VNIC_KIND_BRIDGE, source="br0")))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED  # test:///default cannot hot-plug


def test_virtual_networks(vms):
    name = f"svcnet-{uuid.uuid4().hex[:6]}"
    net = vm_pb2.VirtualNetwork(name=name, mode=vm_pb2.VIRTUAL_NETWORK_MODE_NAT, bridge="virbr31",
                                address="192.168.131.1", prefixlen=24, dhcp_start="192.168.131.10",
                                dhcp_end="192.168.131.50")
    defined = vms.DefineVirtualNetwork(vm_pb2.DefineVirtualNetworkRequest(network=net), timeout=5)
    assert defined.network.mode == vm_pb2.VIRTUAL_NETWORK_MODE_NAT and not defined.active
    assert defined.network.dhcp_start == "192.168.131.10"
    assert vms.StartVirtualNetwork(vm_pb2.StartVirtualNetworkRequest(name=name), timeout=5).active
    listed = {n.network.name: n.active for n in vms.ListVirtualNetworks(vm_pb2.ListVirtualNetworksRequest(),
                                                                          timeout=5).networks}
    assert listed[name] is True
    assert not vms.DestroyVirtualNetwork(vm_pb2.DestroyVirtualNetworkRequest(name=name), timeout=5).active
    vms.UndefineVirtualNetwork(vm_pb2.UndefineVirtualNetworkRequest(name=name), timeout=5)
    bad = vm_pb2.VirtualNetwork(name=name, mode=vm_pb2.VIRTUAL_NETWORK_MODE_BRIDGED)
    err = rpc_error(vms.DefineVirtualNetwork, vm_pb2.DefineVirtualNetworkRequest(network=bad))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err)[0][0] == "network.bridge"


def test_only_the_manager_may_call(pki, vms):
    """A client certificate of our CA that is not the manager's gets through TLS only to be denied."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, csr = make_key_and_csr("intruder")
    cert = pki["ca"]._issue(x509.load_pem_x509_csr(csr).public_key(), "intruder", [],
                            ExtendedKeyUsageOID.CLIENT_AUTH)
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].cert_pem, private_key=key,
                                         certificate_chain=cert)
    channel, stub = _stub(pki["root"] / "vm-agent.sock", creds)
    with channel:
        err = rpc_error(stub.ListVms, vm_pb2.ListVmsRequest())
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs in a network namespace (root)")
def test_the_agent_process_serves_vms_beside_its_host_service(pki):
    from manager.lab import namespaces

    ns = f"vfv{uuid.uuid4().hex[:6]}"
    namespaces.create_switch(ns)  # an empty namespace with lo up is all the agent needs
    sock = pki["root"] / "agent.sock"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "agent.main", "--listen", f"unix://{sock}",
         "--pki-dir", str(pki["root"] / "agent"), "--state-dir", str(pki["root"] / "state"),
         "--libvirt-uri", "test:///default"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "agent did not start"
            time.sleep(0.02)
        channel, stub = _stub(sock, pki["manager"].channel_credentials())
        with channel:
            defined = stub.DefineVm(vm_pb2.DefineVmRequest(spec=spec("svc-agent")), timeout=10)
            assert defined.domain_type == "test"
            names = [v.name for v in stub.ListVms(vm_pb2.ListVmsRequest(), timeout=5).vms]
        assert "svc-agent" in names
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        namespaces.remove(ns)
