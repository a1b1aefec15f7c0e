"""VM and virtual-network lifecycle against libvirt's test driver (test:///default, no daemon).

The test driver assigns no PCI addresses and cannot hot-plug into a running VM; hot-plug
on real QEMU is covered by the lab integration tests.
"""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from agent.virt import lifecycle, networks  # noqa: E402
from agent.virt.connection import Hypervisor, pick_domain_type  # noqa: E402
from virtfleet.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented  # noqa: E402
from agent.virt.spec import (DirectMode, NetworkMode, NicKind, PciAddress, Qbg, VirtualNetworkSpec,  # noqa: E402
                             VmSpec, VmState, VNicSpec)


@pytest.fixture
def hv() -> Iterator[Hypervisor]:
    """The test driver's state is shared by the whole process: each test cleans up what it made."""
    hyper = Hypervisor("test:///default")
    before = {d.name() for d in hyper.conn.listAllDomains()}
    nets_before = {n.name() for n in hyper.conn.listAllNetworks()}
    yield hyper
    for dom in hyper.conn.listAllDomains():
        if dom.name() not in before:
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()
    for net in hyper.conn.listAllNetworks():
        if net.name() not in nets_before:
            if net.isActive():
                net.destroy()
            net.undefine()
    hyper.close()


def name() -> str:
    return f"vm-{uuid.uuid4().hex[:8]}"


def spec(vm: str, *nics: VNicSpec) -> VmSpec:
    return VmSpec(name=vm, memory_mib=64, vcpus=1, nics=nics or (
        VNicSpec("nic1", NicKind.BRIDGE, "ovirtmgmt", mac="52:54:00:10:00:01", pci=PciAddress(0, 0, 3, 0)),
        VNicSpec("nic2", NicKind.DIRECT, "eth0", mode=DirectMode.BRIDGE, mac="52:54:00:10:00:02"),
    ))


def test_define_start_stop_undefine(hv):
    vm = name()
    defined = lifecycle.define_vm(hv, spec(vm))
    assert defined.state == VmState.SHUTOFF and defined.persistent
    assert defined.runtime.domain_type == "test"
    assert [n.name for n in defined.runtime.nics] == ["nic1", "nic2"]

    running = lifecycle.start_vm(hv, vm)
    assert running.state == VmState.RUNNING
    nic1, nic2 = running.runtime.nics
    assert (nic1.mac, nic1.source, nic1.pci) == ("52:54:00:10:00:01", "ovirtmgmt", PciAddress(0, 0, 3, 0))
    assert (nic2.mac, nic2.source, nic2.mode) == ("52:54:00:10:00:02", "eth0", DirectMode.BRIDGE)
    assert nic1.host_device and nic2.host_device and nic1.host_device != nic2.host_device

    stopped, destroyed = lifecycle.stop_vm(hv, vm, timeout_s=5)
    assert stopped.state == VmState.SHUTOFF and not destroyed
    lifecycle.undefine_vm(hv, vm)
    assert vm not in [s.runtime.name for s in lifecycle.list_vms(hv)]


def test_start_paused_and_destroy(hv):
    vm = name()
    lifecycle.define_vm(hv, spec(vm))
    assert lifecycle.start_vm(hv, vm, paused=True).state == VmState.PAUSED
    assert lifecycle.destroy_vm(hv, vm).state == VmState.SHUTOFF


def test_list_reports_each_vm_with_its_state(hv):
    a, b = sorted([name(), name()])
    lifecycle.define_vm(hv, spec(a))
    lifecycle.define_vm(hv, spec(b))
    lifecycle.start_vm(hv, b)
    states = {s.runtime.name: s.state for s in lifecycle.list_vms(hv)}
    assert states[a] == VmState.SHUTOFF and states[b] == VmState.RUNNING


def test_unknown_vm_is_not_found(hv):
    with pytest.raises(NotFound, match="'nope'"):
        lifecycle.get_vm(hv, "nope")
    with pytest.raises(NotFound):
        lifecycle.start_vm(hv, "nope")


def test_wrong_state_is_a_failed_precondition_and_changes_nothing(hv):
    vm = name()
    lifecycle.define_vm(hv, spec(vm))
    with pytest.raises(FailedPrecondition, match="not running"):
        lifecycle.stop_vm(hv, vm)
    lifecycle.start_vm(hv, vm)
    for action in (lambda: lifecycle.start_vm(hv, vm), lambda: lifecycle.undefine_vm(hv, vm),
                   lambda: lifecycle.define_vm(hv, spec(vm))):
        with pytest.raises(FailedPrecondition):
            action()
    assert lifecycle.get_vm(hv, vm).state == VmState.RUNNING


def test_invalid_spec_defines_nothing(hv):
    vm = name()
    bad = spec(vm, VNicSpec("q", NicKind.DIRECT, "eth0.2", vlan=2, virtualport=Qbg(0, 1, 1)))
    with pytest.raises(InvalidArgument) as err:
        lifecycle.define_vm(hv, bad)
    assert err.value.field == "spec.nics[0].qbg.managerid"
    with pytest.raises(NotFound):
        lifecycle.get_vm(hv, vm)


def test_redefining_keeps_uuid_and_vsi_instance_ids(hv):
    vm = name()
    qbg_nic = VNicSpec("q", NicKind.DIRECT, "eth0.2", vlan=2, virtualport=Qbg(11, 1193047, 2))
    first = lifecycle.define_vm(hv, spec(vm, qbg_nic))
    instance = first.runtime.nics[0].vsi_instanceid
    uuid.UUID(instance)
    again = lifecycle.define_vm(hv, spec(vm, qbg_nic, VNicSpec("nic2", NicKind.BRIDGE, "br0")))
    assert again.runtime.uuid == first.runtime.uuid
    assert again.runtime.nics[0].vsi_instanceid == instance


def test_passthrough_device_is_one_guests_and_the_refusal_names_it(hv):
    holder, other = name(), name()
    pt = VNicSpec("pt", NicKind.DIRECT, "eth7", mode=DirectMode.PASSTHROUGH)
    lifecycle.define_vm(hv, spec(holder, pt))
    with pytest.raises(FailedPrecondition) as err:
        lifecycle.define_vm(hv, spec(other, pt))
    assert repr(holder) in err.value.message and "eth7" in err.value.message
    with pytest.raises(NotFound):
        lifecycle.get_vm(hv, other)
    lifecycle.define_vm(hv, spec(other, VNicSpec("nic1", NicKind.BRIDGE, "br0")))
    with pytest.raises(FailedPrecondition, match=repr(holder)):
        lifecycle.attach_nic(hv, other, pt)
    lifecycle.undefine_vm(hv, holder)
    assert [n.name for n in lifecycle.attach_nic(hv, other, pt).runtime.nics] == ["nic1", "pt"]


def test_vsi_instance_id_is_unique_on_the_host(hv):
    a, b = name(), name()
    nic = VNicSpec("q", NicKind.DIRECT, "eth0.2", vlan=2, virtualport=Qbg(11, 1, 1))
    taken = lifecycle.define_vm(hv, spec(a, nic)).runtime.nics[0].vsi_instanceid
    from dataclasses import replace
    with pytest.raises(FailedPrecondition, match=repr(a)):
        lifecycle.define_vm(hv, spec(b, replace(nic, virtualport=Qbg(11, 1, 1, taken))))


def test_attach_and_detach_on_a_shut_off_vm(hv):
    vm = name()
    lifecycle.define_vm(hv, spec(vm))
    added = lifecycle.attach_nic(hv, vm, VNicSpec("nic3", NicKind.VIRTUAL_NETWORK, "default", mac="52:54:00:10:00:03"))
    assert [n.name for n in added.runtime.nics] == ["nic1", "nic2", "nic3"]
    with pytest.raises(InvalidArgument) as err:
        lifecycle.attach_nic(hv, vm, VNicSpec("nic4", NicKind.BRIDGE, "br0", mac="52:54:00:10:00:03"))
    assert err.value.field == "nic.mac"
    with pytest.raises(InvalidArgument) as err:
        lifecycle.attach_nic(hv, vm, VNicSpec("nic1", NicKind.BRIDGE, "br0"))
    assert err.value.field == "nic.name"
    removed = lifecycle.detach_nic(hv, vm, "nic2")
    assert [n.name for n in removed.runtime.nics] == ["nic1", "nic3"]
    with pytest.raises(NotFound, match="'nic2'"):
        lifecycle.detach_nic(hv, vm, "nic2")


def test_hot_plug_needs_a_driver_that_can(hv):
    vm = name()
    lifecycle.define_vm(hv, spec(vm))
    lifecycle.start_vm(hv, vm)
    with pytest.raises(Unimplemented):
        lifecycle.attach_nic(hv, vm, VNicSpec("nic3", NicKind.BRIDGE, "br0"))
    assert [n.name for n in lifecycle.get_vm(hv, vm).runtime.nics] == ["nic1", "nic2"]


def test_domain_type_prefers_kvm_then_qemu():
    def caps(*types: str) -> str:
        doms = "".join(f"<domain type='{t}'/>" for t in types)
        return f"<capabilities><guest><arch name='x86_64'>{doms}</arch></guest></capabilities>"

    assert pick_domain_type(caps("qemu", "kvm")) == "kvm"
    assert pick_domain_type(caps("qemu")) == "qemu"
    assert pick_domain_type(caps("test")) == "test"


# --- virtual networks ----------------------------------------------------------------------------

def test_virtual_network_lifecycle(hv):
    net = VirtualNetworkSpec(f"n-{uuid.uuid4().hex[:6]}", NetworkMode.ROUTED, bridge="virbr21",
                             address="198.51.100.1", prefixlen=24, dhcp_start="198.51.100.10",
                             dhcp_end="198.51.100.20")
    defined = networks.define_network(hv, net)
    assert not defined.active and defined.persistent
    assert defined.network.mode == NetworkMode.ROUTED and defined.network.dhcp_end == "198.51.100.20"
    assert networks.start_network(hv, net.name).active
    with pytest.raises(FailedPrecondition):
        networks.undefine_network(hv, net.name)
    assert net.name in [s.network.name for s in networks.list_networks(hv) if s.active]
    assert not networks.destroy_network(hv, net.name).active
    networks.undefine_network(hv, net.name)
    with pytest.raises(NotFound):
        networks.start_network(hv, net.name)


def test_invalid_virtual_network_defines_nothing(hv):
    bad = VirtualNetworkSpec("badnet", NetworkMode.NAT, address="10.0.0.1", prefixlen=24, dhcp_start="10.0.1.1",
                             dhcp_end="10.0.1.9")
    with pytest.raises(InvalidArgument) as err:
        networks.define_network(hv, bad)
    assert err.value.field == "network.dhcp_start"
    assert "badnet" not in [s.network.name for s in networks.list_networks(hv)]
