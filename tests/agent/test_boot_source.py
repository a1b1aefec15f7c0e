"""Boot sources, the domain type decision and the guest's own view, as pure functions and on the test driver."""
from __future__ import annotations

import libvirt
import pytest

from agent.guest.cmdline import BASE_CMDLINE, parse_static_ips, static_ip_arg
from agent.virt.boot import disk_format, prepare_vm, resolve_boot
from agent.virt.connection import KvmFacts, choose_domain_type, read_kvm_facts
from agent.virt.guestagent import parse_interfaces
from agent.virt.spec import BootKind, BootSource, VmSpec
from agent.virt.validation import MAX_CMDLINE, validate_boot, validate_vm
from virtfleet.errors import InvalidArgument

FULL_KVM = KvmFacts(dev_kvm=True, paravirtual=False)
PVM = KvmFacts(dev_kvm=True, paravirtual=True)
NO_KVM = KvmFacts()
BOTH = {"kvm", "qemu"}


def refusal(boot: BootSource) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        validate_boot(boot, "spec.boot")
    return err.value


# --- domain type ------------------------------------------------------------------------------

@pytest.mark.parametrize("requested", ["", "auto"])
def test_auto_runs_a_guest_with_an_os_under_tcg_where_kvm_is_paravirtual_or_absent(requested):
    assert choose_domain_type(requested, BOTH, PVM, has_os=True) == "qemu"
    assert choose_domain_type(requested, {"qemu"}, NO_KVM, has_os=True) == "qemu"
    assert choose_domain_type(requested, BOTH, FULL_KVM, has_os=True) == "kvm"


def test_auto_keeps_diskless_vms_on_kvm_whenever_libvirt_offers_it():
    assert choose_domain_type("auto", BOTH, PVM, has_os=False) == "kvm"
    assert choose_domain_type("", BOTH, FULL_KVM, has_os=False) == "kvm"
    assert choose_domain_type("", {"qemu"}, NO_KVM, has_os=False) == "qemu"


def test_an_explicit_domain_type_is_kept():
    assert choose_domain_type("kvm", BOTH, PVM, has_os=True) == "kvm"
    assert choose_domain_type("qemu", BOTH, FULL_KVM, has_os=False) == "qemu"
    assert choose_domain_type("auto", {"test"}, NO_KVM, has_os=True) == "test"


def test_kvm_facts_read_pvm_from_its_module_or_from_missing_vmx_and_svm(tmp_path):
    dev, mods, cpuinfo = tmp_path / "kvm", tmp_path / "module", tmp_path / "cpuinfo"
    mods.mkdir()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme sse2 vmx\n")
    assert read_kvm_facts(dev, mods, cpuinfo) == NO_KVM
    dev.touch()
    assert read_kvm_facts(dev, mods, cpuinfo) == FULL_KVM
    (mods / "kvm_pvm").mkdir()
    assert read_kvm_facts(dev, mods, cpuinfo) == PVM
    (mods / "kvm_pvm").rmdir()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor\n")
    assert read_kvm_facts(dev, mods, cpuinfo) == PVM


# --- validation ---------------------------------------------------------------------------------

def test_more_than_one_source_is_refused_naming_the_second():
    assert refusal(BootSource(kernel="/k", disk="/d")).field == "spec.boot.disk"
    assert refusal(BootSource(disk="/d", test_guest=True)).field == "spec.boot.test_guest"


def test_initrd_and_cmdline_need_a_kernel():
    assert refusal(BootSource(initrd="/i", disk="/d")).field == "spec.boot.initrd"
    assert refusal(BootSource(cmdline="quiet", disk="/d")).field == "spec.boot.cmdline"
    validate_boot(BootSource(cmdline="vf.ip=52:54:00:00:00:01=192.0.2.1/24", test_guest=True), "spec.boot")


def test_relative_paths_nul_and_overlong_command_lines_are_refused():
    assert refusal(BootSource(kernel="vmlinuz")).field == "spec.boot.kernel"
    assert refusal(BootSource(kernel="/k", initrd="/i\0")).field == "spec.boot.initrd"
    assert refusal(BootSource(kernel="/k", cmdline="quiet\0init=/bin/sh")).field == "spec.boot.cmdline"
    assert refusal(BootSource(kernel="/k", cmdline="x" * (MAX_CMDLINE + 1))).field == "spec.boot.cmdline"
    validate_boot(BootSource(kernel="/k", cmdline="x" * MAX_CMDLINE), "spec.boot")
    # the test guest's own console arguments count too
    assert refusal(BootSource(test_guest=True, cmdline="x" * (MAX_CMDLINE - len(BASE_CMDLINE)))).field == \
        "spec.boot.cmdline"


def test_auto_is_a_domain_type_and_the_boot_is_validated_with_the_vm():
    validate_vm(VmSpec("vm1", 128, 1, domain_type="auto", boot=BootSource(test_guest=True)))
    with pytest.raises(InvalidArgument) as err:
        validate_vm(VmSpec("vm1", 128, 1, domain_type="xen"))
    assert err.value.field == "spec.domain_type"
    with pytest.raises(InvalidArgument) as err:
        validate_vm(VmSpec("vm1", 128, 1, boot=BootSource(kernel="/k", disk="/d")))
    assert err.value.field == "spec.boot.disk"


# --- resolution on this host ----------------------------------------------------------------

def test_missing_files_are_refused_naming_the_field(tmp_path):
    kernel = tmp_path / "vmlinuz"
    for boot, field in ((BootSource(kernel=str(kernel)), "spec.boot.kernel"),
                        (BootSource(disk=str(tmp_path)), "spec.boot.disk")):
        with pytest.raises(InvalidArgument) as err:
            resolve_boot(boot)
        assert err.value.field == field
    kernel.write_bytes(b"bzImage")
    with pytest.raises(InvalidArgument) as err:
        resolve_boot(BootSource(kernel=str(kernel), initrd=str(tmp_path / "initrd")))
    assert err.value.field == "spec.boot.initrd"


def test_disk_format_is_read_from_the_header_not_the_name(tmp_path):
    assert disk_format(b"QFI\xfb\x00\x00\x00\x03") == "qcow2"
    assert disk_format(b"\xebc\x90\x00") == "raw"
    looks_qcow = tmp_path / "disk.qcow2"
    looks_qcow.write_bytes(b"\0" * 512)
    assert resolve_boot(BootSource(disk=str(looks_qcow))).disk_format == "raw"
    real_qcow = tmp_path / "disk.img"
    real_qcow.write_bytes(b"QFI\xfb" + b"\0" * 508)
    assert resolve_boot(BootSource(disk=str(real_qcow))).disk_format == "qcow2"


def test_a_vm_with_an_os_gets_its_console_file_and_a_diskless_one_none(tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"bzImage")
    ready = prepare_vm(VmSpec("web1", 128, 1, boot=BootSource(kernel=str(kernel))), tmp_path / "console")
    assert ready.console_log == str(tmp_path / "console" / "web1.log")
    assert (tmp_path / "console").is_dir()
    assert prepare_vm(VmSpec("d1", 64, 1), tmp_path / "c2").console_log == ""
    assert BootSource().kind == BootKind.NONE and not BootSource().has_os


# --- the guest's command line and its own view -----------------------------------------------

def test_static_addresses_are_keyed_by_mac():
    arg = static_ip_arg({"52:54:00:AA:00:01": "192.0.2.10/24", "52:54:00:aa:00:02": "198.51.100.7/25"})
    assert arg == "vf.ip=52:54:00:aa:00:01=192.0.2.10/24,52:54:00:aa:00:02=198.51.100.7/25"
    assert parse_static_ips(f"{BASE_CMDLINE} {arg}") == {"52:54:00:aa:00:01": "192.0.2.10/24",
                                                         "52:54:00:aa:00:02": "198.51.100.7/25"}
    with pytest.raises(ValueError):
        static_ip_arg({"52:54:00:aa:00:01": "192.0.2.10"})


def test_guest_interfaces_leave_out_loopback_and_sort_naturally():
    four, six = libvirt.VIR_IP_ADDR_TYPE_IPV4, libvirt.VIR_IP_ADDR_TYPE_IPV6
    found = parse_interfaces({
        "lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"type": four, "addr": "127.0.0.1", "prefix": 8}]},
        "eth10": {"hwaddr": "52:54:00:00:00:0B", "addrs": None},
        "eth2": {"hwaddr": "52:54:00:00:00:03", "addrs": [{"type": four, "addr": "192.0.2.3", "prefix": 24},
                                                          {"type": six, "addr": "fe80::1", "prefix": 64}]},
    })
    assert [(i.name, i.mac, i.addresses) for i in found] == [
        ("eth2", "52:54:00:00:00:03", ("192.0.2.3/24", "fe80::1/64")), ("eth10", "52:54:00:00:00:0b", ())]
