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
from pathlib import Path
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


DOMAIN_TYPES = frozenset({"kvm", "qemu", "test", "auto"})


@dataclass(frozen=True)
class KvmFacts:
    """What this machine's /dev/kvm is: the input of choose_domain_type (read by read_kvm_facts)."""

    dev_kvm: bool = False        # /dev/kvm exists
    paravirtual: bool = False    # kvm_pvm: a KVM without hardware virtualisation (see read_kvm_facts)


def read_kvm_facts(dev: Path = Path("/dev/kvm"), sys_module: Path = Path("/sys/module"),
                   cpuinfo: Path = Path("/proc/cpuinfo")) -> KvmFacts:
    """/dev/kvm is paravirtual when the kvm_pvm module serves it, or when the CPUs show neither vmx nor svm
    (no hardware virtualisation, yet a /dev/kvm: only a paravirtual KVM does that)."""
    if not dev.exists():
        return KvmFacts()
    if (sys_module / "kvm_pvm").exists():
        return KvmFacts(dev_kvm=True, paravirtual=True)
    try:
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
                 for f in line.split(":", 1)[1].split()}
    except OSError:
        return KvmFacts(dev_kvm=True)
    return KvmFacts(dev_kvm=True, paravirtual=not flags & {"vmx", "svm"})


def choose_domain_type(requested: str, offered: set[str], kvm: KvmFacts, has_os: bool) -> str:
    """The <domain type> of one VM. An explicit kvm/qemu/test is kept (libvirt refuses what it cannot run).

    "auto" (or empty) picks qemu (TCG) for a VM with an OS where /dev/kvm is absent or paravirtual:
    kvm_pvm runs an unmodified guest kernel far too slowly (minutes to decompress it). A diskless VM
    keeps today's rule, kvm whenever libvirt offers it: it runs no guest code but firmware, which
    kvm_pvm runs fine, and it is the production path every existing VM and test takes.
    """
    if requested and requested != "auto":
        return requested
    full_kvm = "kvm" in offered and (not has_os or (kvm.dev_kvm and not kvm.paravirtual))
    if full_kvm:
        return "kvm"
    if "qemu" in offered:
        return "qemu"
    return sorted(offered)[0] if offered else "qemu"


class Hypervisor:
    """The host's libvirt, by URI (qemu:///system in production, test:///default in unit tests).

    `console_dir` is where VMs with an OS write their serial console (one NAME.log each);
    `guest_cache` where the test guest is cached (None: agent.guest.image's default);
    `libvirt_pki_dir` where libvirtd's TLS files are (agent.virt.libvirt_pki): a migration's `pkipath`."""

    def __init__(self, uri: str, *, vm_changes_max: int = DEFAULT_MAX_ACTIVE, console_dir: Path | None = None,
                 guest_cache: Path | None = None, libvirt_pki_dir: Path | None = None) -> None:
        self.uri = uri
        self.libvirt_pki_dir = libvirt_pki_dir or Path("/etc/pki/virtfleet-agent/libvirt")
        self.console_dir = console_dir or Path("/var/lib/virtfleet-agent/console")
        self.guest_cache = guest_cache
        self.lock = threading.RLock()
        self.vm_changes = VmChanges(vm_changes_max)
        self._connecting = threading.Lock()   # not `lock`: a read must not wait for a change's libvirt call
        self._conn: libvirt.virConnect | None = None
        self._domain_type: str | None = None
        self._offered: set[str] | None = None
        self._kvm: KvmFacts | None = None
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

    def domain_type_for(self, requested: str, has_os: bool) -> str:
        """choose_domain_type with this host's facts (libvirt's offered types and /dev/kvm), read once."""
        if self._offered is None:
            self._offered = offered_domain_types(self.conn.getCapabilities())
        if self._kvm is None:
            self._kvm = read_kvm_facts()
        return choose_domain_type(requested, self._offered, self._kvm, has_os)

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


def offered_domain_types(capabilities_xml: str) -> set[str]:
    caps = ET.fromstring(capabilities_xml)
    offered = {d.get("type", "") for d in caps.findall("guest/arch[@name='x86_64']/domain")}
    return offered or {d.get("type", "") for d in caps.findall("guest/arch/domain")}  # test driver: i686 only


def pick_domain_type(capabilities_xml: str) -> str:
    offered = offered_domain_types(capabilities_xml)
    for preferred in ("kvm", "qemu"):
        if preferred in offered:
            return preferred
    return sorted(offered)[0] if offered else "qemu"
