"""How a VM boots and which hypervisor runs it: typed, with the checks of what admins give.

A boot source is one of: a kernel booted directly (with an initrd and a command line),
a disk image on the host, the agent's cached test guest (whose command line may be
extended), or nothing at all (a diskless VM, `DISKLESS`, the empty source). The paths are the host's: the
manager cannot see them, so only their form is checked here (absolute, printable,
bounded); whether they exist is the agent's check at define time, and its refusal
reaches the admin with the same field path (`boot.kernel`).

The domain type is the admin's wish: `kvm`, `qemu` (TCG) or `auto`, which lets each
agent choose (TCG where its KVM is paravirtual or absent). Pure: no database, no gRPC.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from virtfleet.errors import InvalidArgument

MAX_PATH = 4096          # the kernel's PATH_MAX, NUL included
MAX_CMDLINE = 2048       # x86's COMMAND_LINE_SIZE: a longer one is cut by the guest's kernel


class DomainType(enum.Enum):
    KVM = "kvm"
    QEMU = "qemu"        # TCG: slower, but runs an unmodified kernel where KVM is paravirtual (kvm_pvm)
    AUTO = "auto"        # the agent picks

    @property
    def for_agent(self) -> str:
        """The VmSpec word: empty for auto, which every agent reads as "choose", old ones included."""
        return "" if self is DomainType.AUTO else self.value


@dataclass(frozen=True)
class BootSource:
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    disk: str | None = None
    test_guest: bool = False

    @property
    def kind(self) -> str:
        """For people: kernel, disk, test guest or diskless."""
        if self.kernel:
            return "kernel"
        if self.disk:
            return "disk"
        return "test guest" if self.test_guest else "diskless"


DISKLESS = BootSource()


def check_domain_type(text: str, field: str = "domain_type") -> DomainType | None:
    """The admin's domain type; None when not given (inherit, else auto)."""
    if not text:
        return None
    try:
        return DomainType(text.strip().lower())
    except ValueError:
        raise InvalidArgument(field, f"{text!r} is not a domain type: one of kvm, qemu (TCG), auto") from None


def _path(value: str | None, field: str) -> str | None:
    if not value:
        return None
    if not value.startswith("/"):
        raise InvalidArgument(field, f"{value!r} is not an absolute path (a path on the host, starting with /)")
    if len(value) >= MAX_PATH:
        raise InvalidArgument(field, f"is {len(value)} characters long; a host path is shorter than {MAX_PATH}")
    if not value.isprintable():
        raise InvalidArgument(field, "contains a NUL byte or another control character")
    return value


def check_boot(boot: BootSource | None, field: str = "boot") -> BootSource | None:
    """An admin's boot source, checked; None (not given: inherit) stays None, an empty one is DISKLESS."""
    if boot is None:
        return None
    kernel, initrd = _path(boot.kernel, f"{field}.kernel"), _path(boot.initrd, f"{field}.initrd")
    disk = _path(boot.disk, f"{field}.disk")
    cmdline = boot.cmdline or None
    given = [name for name, value in (("kernel", kernel), ("disk", disk), ("test_guest", boot.test_guest)) if value]
    if len(given) > 1:
        raise InvalidArgument(f"{field}.{given[1]}", f"a VM boots one way: {given[0]} is given already (one of "
                                                     "kernel (+ initrd, cmdline), disk, test_guest)")
    if initrd and not kernel:
        raise InvalidArgument(f"{field}.initrd", "an initrd goes with a kernel (give boot.kernel too)")
    if cmdline is not None:
        if not (kernel or boot.test_guest):
            raise InvalidArgument(f"{field}.cmdline", "a command line goes with a kernel or the test guest")
        if len(cmdline) > MAX_CMDLINE:
            raise InvalidArgument(f"{field}.cmdline", f"is {len(cmdline)} characters long; the guest's kernel "
                                                      f"takes at most {MAX_CMDLINE}")
        if not cmdline.isprintable():
            raise InvalidArgument(f"{field}.cmdline", "contains a NUL byte or another control character")
    return BootSource(kernel=kernel, initrd=initrd, cmdline=cmdline, disk=disk, test_guest=boot.test_guest)
