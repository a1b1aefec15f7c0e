"""A VM's boot source made concrete on this host: files checked, the test guest located, the disk's format read.

The only I/O of booting (the XML builder stays pure): a path the request names must
exist here (the refusal names the field), a disk's format is read from its header
rather than trusted from its name, and `test_guest` becomes the cached guest's kernel
and initrd (built at first use, ~20 s once per package set; agent.guest.image).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from virtfleet.errors import InvalidArgument, shown

from ..guest.cmdline import join_cmdline
from ..guest.image import ensure_guest
from .spec import BootKind, BootSource, VmSpec

QCOW2_MAGIC = b"QFI\xfb"


def disk_format(header: bytes) -> str:
    """qcow2 by its magic; anything else is used as raw (QEMU would refuse to guess for a raw image)."""
    return "qcow2" if header.startswith(QCOW2_MAGIC) else "raw"


def resolve_boot(boot: BootSource, where: str = "spec.boot", guest_cache: Path | None = None) -> BootSource:
    """The validated `boot` with every file present on this host (see the module's docstring)."""
    kind = boot.kind
    if kind == BootKind.TEST_GUEST:
        image = ensure_guest(guest_cache)
        return BootSource(kernel=str(image.kernel), initrd=str(image.initrd),
                          cmdline=join_cmdline(image.cmdline, boot.cmdline))
    if kind == BootKind.KERNEL:
        _must_be_file(boot.kernel, f"{where}.kernel")
        if boot.initrd:
            _must_be_file(boot.initrd, f"{where}.initrd")
        return boot
    if kind == BootKind.DISK:
        _must_be_file(boot.disk, f"{where}.disk")
        with open(boot.disk, "rb") as f:
            return replace(boot, disk_format=disk_format(f.read(len(QCOW2_MAGIC))))
    return boot


def _must_be_file(path: str, field: str) -> None:
    p = Path(path)
    if not p.is_file():
        what = "is not a regular file" if p.exists() else "does not exist"
        raise InvalidArgument(field, f"{shown(path)} {what} on this host")


def console_log_path(console_dir: Path, vm: str) -> str:
    """The serial console of VM `vm`: one file per VM name in the agent's console directory."""
    return str(console_dir / f"{vm}.log")


def prepare_vm(spec: VmSpec, console_dir: Path, guest_cache: Path | None = None) -> VmSpec:
    """A validated spec ready for the XML: its boot resolved and, for a VM with an OS, its console file set."""
    if not spec.boot.has_os:
        return spec
    console_dir.mkdir(parents=True, exist_ok=True)
    return replace(spec, boot=resolve_boot(spec.boot, guest_cache=guest_cache),
                   console_log=console_log_path(console_dir, spec.name))
