"""One libvirt connection per agent, opened by URI on first use and reopened when it drops.

libvirt connections are safe to share between threads, but the agent's compound
changes (check which VM holds a device, then define) are not atomic in libvirt,
so callers take `lock` around them: one check-then-act step at a time per host,
waited for no longer than the caller waits. Whole VM changes (a guest's shutdown
included) are admitted and serialised per VM by `vm_change` (vmchanges.py), and
never hold `lock` while they wait on a guest.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import libvirt

from virtfleet import deadline, rules
from virtfleet.errors import (DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, Unavailable,
                              Unimplemented)

from .vmchanges import DEFAULT_MAX_ACTIVE, UNBOUNDED_WAIT_S, VmChanges

# libvirt prints every error to stderr unless a handler is registered; we raise typed errors instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_NOT_FOUND = {libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK}
_UNAVAILABLE = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_AUTH_FAILED}
_UNSUPPORTED = {libvirt.VIR_ERR_NO_SUPPORT}
_BAD_XML = {libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_XML_DETAIL, libvirt.VIR_ERR_CONFIG_UNSUPPORTED}


def translate(err: libvirt.libvirtError, what: str) -> Exception:
    """libvirt's error codes -> our error types (callers `raise translate(err, ...) from err`)."""
    code = err.get_error_code()
    message = f"{what}: libvirt: {err.get_error_message()}"
    if code in _NOT_FOUND:
        return NotFound(message)
    if code in _UNAVAILABLE or err.get_error_domain() == libvirt.VIR_FROM_RPC:  # e.g. libvirtd restarted
        return Unavailable(message)
    if code in _UNSUPPORTED:
        return Unimplemented(message)
    if code in _BAD_XML:
        return InvalidArgument("spec", message)
    return FailedPrecondition(message)


@dataclass(frozen=True)
class HostLimits:
    """What one VM may have on this host (each also capped by virtfleet.rules' global limits)."""

    max_vcpus: int = rules.MAX_VCPUS
    memory_mib: int = rules.MAX_MEMORY_MIB


class Hypervisor:
    """The host's libvirt, by URI (qemu:///system in production, test:///default in unit tests)."""

    def __init__(self, uri: str, *, vm_changes_max: int = DEFAULT_MAX_ACTIVE) -> None:
        self.uri = uri
        self.lock = threading.RLock()
        self.vm_changes = VmChanges(vm_changes_max)
        self._connecting = threading.Lock()   # not `lock`: a read must not wait for a change's libvirt call
        self._conn: libvirt.virConnect | None = None
        self._domain_type: str | None = None
        self._limits: HostLimits | None = None

    @property
    def conn(self) -> libvirt.virConnect:
        with self._connecting:
            if self._conn is None or not self._alive(self._conn):
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as err:
                    raise Unavailable(f"cannot connect to libvirt at {self.uri}: "
                                      f"{err.get_error_message()}") from err
            return self._conn

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    @contextmanager
    def change(self) -> Iterator[libvirt.virConnect]:
        """Serialises a check-then-act sequence against the host's libvirt."""
        if not self.lock.acquire(timeout=deadline.wait_s(UNBOUNDED_WAIT_S)):
            raise DeadlineExceeded("another change held this host's libvirt for longer than this call could wait; "
                                   "nothing was changed")
        try:
            deadline.check("this host's libvirt was changed")
            yield self.conn
        finally:
            self.lock.release()

    def vm_change(self, vm: str, op: str):
        """One change of a VM: admitted within the host's bound, after the VM's previous change, for a caller
        still waiting (vmchanges.VmChanges.turn)."""
        return self.vm_changes.turn(vm, op)

    def default_domain_type(self) -> str:
        """kvm when libvirt offers it for x86_64 (it checked /dev/kvm), else qemu (TCG), else the driver's own."""
        if self._domain_type is None:
            self._domain_type = pick_domain_type(self.conn.getCapabilities())
        return self._domain_type

    def limits(self) -> HostLimits:
        """The host's own ceilings for one VM, read once: libvirt's max vCPUs for the domain type, and its memory.

        A vCPU count above them made libvirtd allocate without bound (4,294,967,295 vCPUs crashed it)."""
        if self._limits is None:
            conn = self.conn
            try:
                max_vcpus = conn.getMaxVcpus(self.default_domain_type())
            except libvirt.libvirtError:
                max_vcpus = rules.MAX_VCPUS
            self._limits = HostLimits(max_vcpus=max_vcpus if max_vcpus > 0 else rules.MAX_VCPUS,
                                      memory_mib=conn.getInfo()[1] or rules.MAX_MEMORY_MIB)
        return self._limits

    def close(self) -> None:
        with self._connecting:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None


def pick_domain_type(capabilities_xml: str) -> str:
    caps = ET.fromstring(capabilities_xml)
    offered = {d.get("type", "") for d in caps.findall("guest/arch[@name='x86_64']/domain")}
    offered = offered or {d.get("type", "") for d in caps.findall("guest/arch/domain")}  # test driver: i686 only
    for preferred in ("kvm", "qemu"):
        if preferred in offered:
            return preferred
    return sorted(offered)[0] if offered else "qemu"
