"""A boot source on the wire: the contract's `BootSource` ⇄ the manager's `BootSource`.

The agent's VmSpec and the manager's own messages (VirtualMachine, Template, Snapshot
and their create requests, vms.proto) carry the same `BootSource` message, so the API
and the runtime (which builds the VmSpec) use these functions both: written once.
"""
from __future__ import annotations

from virtfleet.v1 import vm_pb2

from ..domain.boot import DISKLESS, BootSource


def boot_message(boot: BootSource) -> vm_pb2.BootSource | None:
    """None for a diskless VM (the field stays unset, which the contract reads as diskless)."""
    if boot == DISKLESS:
        return None
    return vm_pb2.BootSource(kernel=boot.kernel or "", initrd=boot.initrd or "", cmdline=boot.cmdline or "",
                             disk=boot.disk or "", test_guest=boot.test_guest)


def boot_from_message(msg: vm_pb2.BootSource) -> BootSource:
    """As given, unchecked (domain/boot.check_boot checks it, naming the request's field)."""
    return BootSource(kernel=msg.kernel or None, initrd=msg.initrd or None, cmdline=msg.cmdline or None,
                      disk=msg.disk or None, test_guest=msg.test_guest)
