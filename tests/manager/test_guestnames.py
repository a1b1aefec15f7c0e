"""Pure: boot sources as admins give them, guest interfaces matched to vNICs by MAC, guest names compared
with the source's guest (check-order --guest and the audit's guest-nic category), the VmSpec an agent gets."""
from __future__ import annotations

import datetime as dt

import pytest

from manager.audit import audit
from manager.audit.findings import GUEST_NIC
from manager.audit.guestnics import guest_nic_findings
from manager.audit.inputs import FleetInput, GuestNicInput
from manager.domain.boot import DISKLESS, BootSource, DomainType, check_boot, check_domain_type
from manager.domain.guestnames import GuestInterface, GuestNamed, GuestNic, guest_name_mismatches, match_by_mac
from manager.service.vm_runtime import vm_spec
from manager.service.vnic_messages import spec_violation
from manager.store.vms import VmRecord
from virtfleet.errors import InvalidArgument

# -- boot sources ---------------------------------------------------------------------------------


def test_a_kernel_boot_keeps_its_initrd_and_cmdline():
    boot = check_boot(BootSource(kernel="/boot/vmlinuz", initrd="/boot/initrd.img", cmdline="console=ttyS0 quiet"))
    assert boot == BootSource("/boot/vmlinuz", "/boot/initrd.img", "console=ttyS0 quiet")
    assert boot.kind == "kernel"


def test_not_given_is_none_and_an_empty_source_is_diskless():
    assert check_boot(None) is None
    assert check_boot(BootSource()) == DISKLESS and DISKLESS.kind == "diskless"
    assert check_boot(BootSource(test_guest=True, cmdline="ip=10.0.0.2/24")).kind == "test guest"


@pytest.mark.parametrize("boot, field", [
    (BootSource(kernel="/k", disk="/d.qcow2"), "boot.disk"),
    (BootSource(disk="/d.qcow2", test_guest=True), "boot.test_guest"),
    (BootSource(kernel="/k", test_guest=True), "boot.test_guest"),
    (BootSource(kernel="vmlinuz"), "boot.kernel"),
    (BootSource(kernel="/k", initrd="../initrd"), "boot.initrd"),
    (BootSource(disk="images/a.qcow2"), "boot.disk"),
    (BootSource(kernel="/bo\x00ot/k"), "boot.kernel"),
    (BootSource(kernel="/" + "k" * 4096), "boot.kernel"),
    (BootSource(kernel="/k", cmdline="x" * 2049), "boot.cmdline"),
    (BootSource(kernel="/k", cmdline="quiet\nroot=/dev/vda"), "boot.cmdline"),
    (BootSource(initrd="/initrd"), "boot.initrd"),
    (BootSource(disk="/d.raw", cmdline="quiet"), "boot.cmdline"),
])
def test_bad_boot_sources_name_the_field(boot, field):
    with pytest.raises(InvalidArgument) as err:
        check_boot(boot)
    assert err.value.field == field


def test_domain_types():
    assert check_domain_type("") is None
    assert check_domain_type("QEMU") is DomainType.QEMU
    assert DomainType.AUTO.for_agent == "" and DomainType.KVM.for_agent == "kvm"
    with pytest.raises(InvalidArgument) as err:
        check_domain_type("xen")
    assert err.value.field == "domain_type"


def _vm(boot: BootSource, domain_type: DomainType) -> VmRecord:
    now = dt.datetime.now(dt.timezone.utc)
    return VmRecord(1, "vm1", 1, "Default", "Default", None, None, None, "down", 128, 1, None, None, None, None,
                    None, None, now, False, None, boot, domain_type)


def test_the_agent_spec_carries_boot_source_and_domain_type():
    spec = vm_spec(_vm(BootSource("/k", "/i", "quiet"), DomainType.QEMU), [])
    assert (spec.boot.kernel, spec.boot.initrd, spec.boot.cmdline, spec.domain_type) == ("/k", "/i", "quiet", "qemu")
    guest = vm_spec(_vm(BootSource(test_guest=True), DomainType.AUTO), [])
    assert guest.boot.test_guest and guest.domain_type == ""   # auto: the agent chooses
    diskless = vm_spec(_vm(DISKLESS, DomainType.KVM), [])
    assert not diskless.HasField("boot") and diskless.domain_type == "kvm"


def test_an_agents_refusal_of_the_boot_source_names_the_request_field():
    assert spec_violation(InvalidArgument("spec.boot.kernel", "no such file"), []).field == "boot.kernel"
    assert spec_violation(InvalidArgument("spec.domain_type", "no KVM here"), []).field == "domain_type"


# -- guest interfaces by MAC ----------------------------------------------------------------------


def test_guest_interfaces_match_vnics_by_mac_in_any_form():
    vnics = {"nic1": "52:54:00:00:00:01", "nic2": "52:54:00:00:00:02", "nic3": "52:54:00:00:00:03"}
    guest = [GuestInterface("lo", "00:00:00:00:00:00", ("127.0.0.1/8",)),
             GuestInterface("eth1", "52-54-00-00-00-01", ("192.0.2.50/24", "fe80::1/64")),
             GuestInterface("eth0", "52:54:00:00:00:02"),
             GuestInterface("eth9", "52:54:00:00:00:99")]
    assert match_by_mac(vnics, guest) == {"nic1": GuestNic("eth1", ("192.0.2.50/24", "fe80::1/64")),
                                          "nic2": GuestNic("eth0")}


def test_one_mac_on_two_guest_interfaces_gives_the_lowest_name_whatever_the_order():
    vnics = {"nic1": "52:54:00:00:00:01"}
    a = [GuestInterface("eth0.10", "52:54:00:00:00:01"), GuestInterface("eth0", "52:54:00:00:00:01")]
    assert match_by_mac(vnics, a) == match_by_mac(vnics, list(reversed(a))) == {"nic1": GuestNic("eth0")}


def test_interfaces_without_a_usable_mac_are_left_out():
    assert match_by_mac({"nic1": "52:54:00:00:00:01", "nic2": None},
                        [GuestInterface("sit0", ""), GuestInterface("weird", "not-a-mac")]) == {}


# -- guest names against the source's guest -------------------------------------------------------


def _named(*pairs):
    return [GuestNamed(v, g) for v, g in pairs]


def test_same_guest_names_as_the_source_is_in_order():
    src = _named(("nic1", "eth0"), ("nic2", "eth1"), ("nic10", "eth2"))
    assert guest_name_mismatches(src, _named(("nic1", "eth0"), ("nic2", "eth1"), ("nic10", "eth2"))) == []


def test_a_swapped_guest_name_is_reported_at_its_guest_position():
    src = _named(("nic1", "eth0"), ("nic2", "eth1"), ("nic10", "eth2"))
    found = guest_name_mismatches(src, _named(("nic2", "eth1"), ("nic1", "eth2"), ("nic10", "eth0")))
    assert [(m.position, m.field, m.expected, m.found) for m in found] == [
        (1, "guest_name", "eth0", "eth2"), (2, "guest_name", "eth2", "eth0")]


def test_unknown_names_on_either_side_are_not_compared():
    src = _named(("nic1", "eth0"), ("nic2", None))
    assert guest_name_mismatches(src, _named(("nic1", None), ("nic2", "eth5"), ("nic3", "eth1"))) == []


def test_audit_reports_a_guest_that_names_a_nic_otherwise_than_its_templates_guest():
    item = GuestNicInput("web-1", "template", "small", _named(("nic1", "eth0"), ("nic2", "eth1")),
                         _named(("nic1", "eth1"), ("nic2", "eth0")))
    found = guest_nic_findings(item)
    assert [(f.category, f.object, f.expected, f.found) for f in found] == [
        (GUEST_NIC, "vm web-1: guest name of vNIC nic1", "eth0", "eth1"),
        (GUEST_NIC, "vm web-1: guest name of vNIC nic2", "eth1", "eth0")]
    assert "check-order web-1 --guest" in found[0].fix
    same = GuestNicInput("web-2", "snapshot", "s1", item.source, item.source)
    assert audit(FleetInput([], guest_nics=[item, same])) == sorted(found, key=lambda f: f.object)
