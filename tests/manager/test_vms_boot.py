"""Boot sources, domain types and guest names through the API on real PostgreSQL.

A VM boots as it is told, else as its template or snapshot does; bad input is refused
naming the field with nothing stored; a template or snapshot made from a VM keeps the
names its guest gave the vNICs, which `CheckOrder(guest=True)` and the audit compare.
The guest names are written as the manager writes what a guest agent reported
(store/guestnames.py); booting real guests is the lab's test.
"""
from __future__ import annotations

import grpc
import psycopg
import pytest

from manager.domain.guestnames import GuestNic
from manager.store import guestnames
from virtfleet.rpc import field_violations
from virtfleet.v1 import audit_pb2, audit_pb2_grpc, vm_pb2, vms_pb2

from .vmhelpers import api, create_template, create_vm, leased, vm_rows


def _boot(vm) -> tuple:
    return (vm.boot.kernel, vm.boot.initrd, vm.boot.cmdline, vm.boot.disk, vm.boot.test_guest, vm.domain_type)


def _refused(call, field: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert [f for f, _ in field_violations(err.value)] == [field]


def test_a_vm_boots_as_told_and_shows_it(manager):
    vm = create_vm(manager, "vm1", "nic1=ovirtmgmt", boot=vm_pb2.BootSource(
        kernel="/var/lib/guest/vmlinuz", initrd="/var/lib/guest/initrd.gz", cmdline="console=ttyS0"),
        domain_type="qemu")
    assert _boot(vm) == ("/var/lib/guest/vmlinuz", "/var/lib/guest/initrd.gz", "console=ttyS0", "", False, "qemu")
    shown = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="vm1"))
    assert _boot(shown) == _boot(vm)
    plain = create_vm(manager, "vm2", "nic1=ovirtmgmt")
    assert not plain.HasField("boot") and plain.domain_type == "auto"


def test_a_vm_from_a_template_inherits_boot_and_domain_type_unless_given(manager):
    t = create_template(manager, "guest", "nic1=ovirtmgmt", boot=vm_pb2.BootSource(test_guest=True),
                        domain_type="qemu")
    assert t.boot.test_guest and t.domain_type == "qemu"
    inherited = create_vm(manager, "vm1", template="guest")
    assert _boot(inherited) == ("", "", "", "", True, "qemu")
    own = create_vm(manager, "vm2", template="guest", boot=vm_pb2.BootSource(disk="/images/a.qcow2"),
                    domain_type="kvm")
    assert _boot(own) == ("", "", "", "/images/a.qcow2", False, "kvm")
    diskless = create_vm(manager, "vm3", template="guest", boot=vm_pb2.BootSource())
    assert not diskless.HasField("boot") and diskless.domain_type == "qemu"
    bulk = list(api(manager).CreateVirtualMachines(vms_pb2.CreateVirtualMachinesRequest(
        name="many", count=2, template="guest")))
    assert bulk[-1].created == 2
    assert _boot(api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="many-2"))) == _boot(inherited)


def test_templates_and_snapshots_record_their_vms_boot_source(manager):
    create_vm(manager, "src", "nic1=ovirtmgmt", boot=vm_pb2.BootSource(kernel="/k", cmdline="quiet"),
              domain_type="qemu")
    t = api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", from_vm="src"))
    assert _boot(t) == ("/k", "", "quiet", "", False, "qemu")
    s = api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="src", name="s1"))
    assert _boot(s) == _boot(t)
    from_snapshot = create_vm(manager, "vm1", snapshot="s1")
    assert _boot(from_snapshot) == _boot(t)
    retyped = api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name="t2", from_vm="src", domain_type="auto"))
    assert _boot(retyped) == ("/k", "", "quiet", "", False, "auto")


@pytest.mark.parametrize("boot, domain_type, field", [
    (vm_pb2.BootSource(kernel="/k", disk="/d.qcow2"), "", "boot.disk"),
    (vm_pb2.BootSource(kernel="vmlinuz"), "", "boot.kernel"),
    (vm_pb2.BootSource(kernel="/bo\x00ot"), "", "boot.kernel"),
    (vm_pb2.BootSource(kernel="/k", cmdline="x" * 3000), "", "boot.cmdline"),
    (vm_pb2.BootSource(initrd="/initrd"), "", "boot.initrd"),
    (None, "xen", "domain_type"),
])
def test_bad_boot_input_is_refused_naming_the_field_with_nothing_stored(manager, boot, domain_type, field):
    _refused(lambda: create_vm(manager, "vm1", "nic1=ovirtmgmt", boot=boot, domain_type=domain_type), field)
    _refused(lambda: create_template(manager, "t1", "nic1=ovirtmgmt", boot=boot, domain_type=domain_type), field)
    create_template(manager, "good", "nic1=ovirtmgmt")
    _refused(lambda: create_vm(manager, "vm2", template="good", boot=boot, domain_type=domain_type), field)
    assert vm_rows(manager) == (0, 0) and leased(manager) == 0
    assert [t.name for t in api(manager).ListTemplates(vms_pb2.ListTemplatesRequest()).templates] == ["good"]


# -- guest names ----------------------------------------------------------------------------------


def _guest_saw(manager, vm: str, names: dict[str, str]) -> None:
    """Record what VM's guest called its vNICs, as the manager does when its guest agent answers."""
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        vm_id = conn.execute("SELECT id FROM vms WHERE name = %s", (vm,)).fetchone()[0]
        guestnames.store_seen(conn, vm_id, {nic: GuestNic(g, (f"192.0.2.{i + 50}/24",))
                                            for i, (nic, g) in enumerate(sorted(names.items()))})


def test_guest_names_travel_to_templates_and_snapshots_and_are_compared(manager):
    create_vm(manager, "src", "nic1=ovirtmgmt,pci=0000:00:03.0", "nic2=ovirtmgmt,pci=0000:00:04.0",
              "nic10=ovirtmgmt,pci=0000:00:05.0")
    _guest_saw(manager, "src", {"nic1": "eth0", "nic2": "eth1", "nic10": "eth2"})
    shown = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="src"))
    assert [(n.name, n.guest_name, list(n.guest_ips)) for n in shown.nics] == [
        ("nic1", "eth0", []), ("nic2", "eth1", []), ("nic10", "eth2", [])]   # a stopped VM: no addresses
    t = api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", from_vm="src"))
    s = api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="src", name="s1"))
    assert [(n.name, n.guest_name) for n in t.nics] == [(n.name, n.guest_name) for n in s.nics] == [
        ("nic1", "eth0"), ("nic2", "eth1"), ("nic10", "eth2")]

    create_vm(manager, "same", template="t1")
    create_vm(manager, "moved", snapshot="s1")
    with pytest.raises(grpc.RpcError) as err:   # its guest never said anything yet
        api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="same", guest=True))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    _guest_saw(manager, "same", {"nic1": "eth0", "nic2": "eth1", "nic10": "eth2"})
    _guest_saw(manager, "moved", {"nic1": "eth0", "nic2": "eth2", "nic10": "eth1"})

    ok = api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="same", guest=True))
    assert ok.in_order and [n.guest_name for n in ok.actual] == ["eth0", "eth1", "eth2"]
    bad = api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="moved", guest=True))
    assert not bad.in_order
    assert [(m.position, m.field, m.expected, m.found) for m in bad.mismatches] == [
        (1, "guest_name", "eth1", "eth2"), (2, "guest_name", "eth2", "eth1")]
    assert api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="moved")).in_order   # the records agree

    report = audit_pb2_grpc.AuditServiceStub(manager.channel).RunAudit(audit_pb2.RunAuditRequest(category="guest-nic"))
    assert sorted((f.object, f.expected, f.found) for f in report.findings) == [
        ("vm moved: guest name of vNIC nic10", "eth2", "eth1"), ("vm moved: guest name of vNIC nic2", "eth1", "eth2")]


def test_check_order_guest_needs_names_kept_by_the_source(manager):
    create_template(manager, "direct", "nic1=ovirtmgmt")
    create_vm(manager, "vm1", template="direct")
    _guest_saw(manager, "vm1", {"nic1": "eth0"})
    with pytest.raises(grpc.RpcError) as err:
        api(manager).CheckOrder(vms_pb2.CheckOrderRequest(vm="vm1", guest=True))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "keeps no guest names" in err.value.details()
