"""Each lab host's own libvirtd, reached exactly as a production agent reaches `qemu:///system`.

The daemon runs inside the host's network namespace (`ip netns exec`, which also
remounts /sys) and in a private mount namespace where the lab host's directories
are bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt. So every host has its own domains,
networks, dnsmasq and iptables chains, and its sockets sit in the lab directory
where the agent (which stays in the machine's mount namespace) can reach them.

QEMU's capability probe costs ~8 s per fresh cache. libvirt keeps the result only
while the host's CPUID matches, and under nested KVM one CPUID leaf (0x1f, the
x2APIC id) differs from CPU to CPU; so libvirtd is pinned to one CPU (libvirt
resets each QEMU's affinity to all CPUs) and a probed cache is kept machine-wide
in SEED_CACHE, copied into every new host's private cache.

Network filters: libvirtd's nwfilter driver reads its filters from /etc/libvirt/nwfilter,
which is private here, so each host gets libvirt's default filters (clean-traffic,
no-mac-spoofing, …) copied from Debian's libvirt-daemon-config-nwfilter, as that package
does for the machine's own. The rules they instantiate are ebtables/nft rules made by
the host's libvirtd, so they exist only in the host's network namespace.
"""
from __future__ import annotations

import filecmp
import logging
import os
import shlex
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import namespaces, processes

log = logging.getLogger(__name__)

# (private directory name, the system directory it replaces inside the host's mount namespace)
PRIVATE_DIRS = (("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
                ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt"))
SEED_CACHE = Path("/var/cache/virtfleet/libvirt")   # survives `lab down`; refreshed when libvirt re-probed
MACHINE_CACHE = Path("/var/cache/libvirt")          # a system libvirtd's cache, used when we have none yet
QEMU_USER = "libvirt-qemu"                          # libvirtd refuses to start without it
LEFTOVER_PROGRAMS = ("qemu-system-", "dnsmasq")     # they outlive libvirtd and would keep a namespace alive
DEFAULT_NWFILTERS = Path("/usr/share/libvirt/nwfilter")  # libvirt-daemon-config-nwfilter's pristine copies


class LibvirtdError(RuntimeError):
    """libvirtd could not be started; the message points at its log."""


def available() -> bool:
    """The lab runs VMs only where libvirtd and QEMU are installed."""
    return bool(shutil.which("libvirtd")) and bool(shutil.which("qemu-system-x86_64"))


@dataclass(frozen=True)
class LibvirtdPaths:
    """Where one lab host's libvirtd keeps everything (all under the host's lab directory)."""
    root: Path

    def private(self, name: str) -> Path:
        return self.root / name

    @property
    def sock_dir(self) -> Path:
        return self.root / "sock"

    @property
    def socket(self) -> Path:
        return self.sock_dir / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def pid_file(self) -> Path:
        return self.root / "libvirtd.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "libvirtd.log"


def libvirtd_conf(sock_dir: Path) -> str:
    """Unix sockets only, in the lab directory; root-only access stands in for polkit."""
    return "\n".join([
        f'unix_sock_dir = "{sock_dir}"',
        'unix_sock_group = "root"',
        'unix_sock_rw_perms = "0700"',
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
        "",
    ])


def qemu_conf() -> str:
    """Run as root without systemd, cgroups delegation, SELinux/AppArmor or virtlogd (DESIGN.md)."""
    return "\n".join([
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        "remember_owner = 0",
        'security_driver = "none"',
        'stdio_handler = "file"',
        "namespaces = [ ]",
        "",
    ])


def launch_command(netns: str, paths: LibvirtdPaths, cpu: int) -> list[str]:
    """`ip netns exec` → a private mount namespace → bind mounts → libvirtd pinned to `cpu`.

    Every step execs the next, so the pid spawned is libvirtd's own.
    """
    steps = ["set -e"]
    for name, target in PRIVATE_DIRS:
        steps.append(f"mkdir -p {target}")  # a mount point; the package's own directory when installed
        steps.append(f"mount --bind {shlex.quote(str(paths.private(name)))} {target}")
    steps.append(f"exec taskset -c {cpu} libvirtd -f /etc/libvirt/libvirtd.conf -p {shlex.quote(str(paths.pid_file))}")
    return ["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", "; ".join(steps)]


def ensure_qemu_user() -> None:
    if subprocess.run(["id", "-u", QEMU_USER], capture_output=True).returncode == 0:
        return
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/libvirt",
                    "--shell", "/usr/sbin/nologin", QEMU_USER], check=True, capture_output=True)
    log.info("created the system user %s that libvirtd requires", QEMU_USER)


def prepare(paths: LibvirtdPaths) -> None:
    """Private directories with our configuration, the capability cache seeded when we have one."""
    for name, _ in PRIVATE_DIRS:
        paths.private(name).mkdir(parents=True, exist_ok=True)
    paths.sock_dir.mkdir(parents=True, exist_ok=True)
    (paths.private("etc") / "libvirtd.conf").write_text(libvirtd_conf(paths.sock_dir))
    (paths.private("etc") / "qemu.conf").write_text(qemu_conf())
    install_default_filters(paths.private("etc"))
    for seed in (SEED_CACHE, MACHINE_CACHE):
        if (seed / "qemu" / "capabilities").is_dir():
            shutil.copytree(seed, paths.private("cache"), dirs_exist_ok=True)
            break


def install_default_filters(etc: Path, source: Path = DEFAULT_NWFILTERS) -> int:
    """libvirt's default network filters into a host's private /etc/libvirt/nwfilter; how many.

    Without them the nwfilter driver runs with no filters, and a vNIC naming clean-traffic is refused.
    """
    files = sorted(source.glob("*.xml")) if source.is_dir() else []
    if not files:
        log.warning("no default network filters in %s (Debian package libvirt-daemon-config-nwfilter; ./dev "
                    "installs it): lab hosts will have none", source)
        return 0
    target = etc / "nwfilter"
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, target / f.name)
    return len(files)


def start(netns: str, paths: LibvirtdPaths, *, timeout_s: float = 120.0) -> int:
    """Starts libvirtd for one host and waits until it answers with QEMU's capabilities (probed or cached)."""
    ensure_qemu_user()
    prepare(paths)
    cpu = min(os.sched_getaffinity(0))
    pid = processes.spawn(launch_command(netns, paths, cpu), paths.log_file)
    try:
        _wait_ready(paths, pid, timeout_s)
    except BaseException:
        stop(netns, paths, pid)
        raise
    return pid


def _wait_ready(paths: LibvirtdPaths, pid: int, timeout_s: float) -> None:
    """The socket file appears before libvirtd accepts on it: retry the connection until it answers."""
    deadline = time.monotonic() + timeout_s
    while (conn := _open(paths.uri) if paths.socket.exists() else None) is None:
        if not processes.alive(pid):
            raise LibvirtdError(f"libvirtd exited during start; see {paths.log_file}")
        if time.monotonic() > deadline:
            raise LibvirtdError(f"libvirtd does not answer on {paths.socket} after {timeout_s:.0f} s; "
                                f"see {paths.log_file}")
        time.sleep(0.02)
    try:
        conn.getCapabilities()  # the QEMU probe happens here, not during the first VM start
    finally:
        conn.close()


def save_seed(paths: LibvirtdPaths) -> bool:
    """Keeps this host's probed capabilities for the next hosts and labs; True when the seed changed."""
    probed = paths.private("cache") / "qemu" / "capabilities"
    seeded = SEED_CACHE / "qemu" / "capabilities"
    if not probed.is_dir() or not any(probed.iterdir()):
        return False
    if seeded.is_dir():
        same = filecmp.dircmp(probed, seeded)
        if not (same.left_only or same.right_only or same.diff_files or same.funny_files):
            return False
    tmp = SEED_CACHE.with_name(f"{SEED_CACHE.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(probed, tmp / "qemu" / "capabilities")
    old = SEED_CACHE.with_name(f"{SEED_CACHE.name}.old{os.getpid()}")
    if SEED_CACHE.exists():
        SEED_CACHE.rename(old)
    tmp.rename(SEED_CACHE)
    shutil.rmtree(old, ignore_errors=True)
    return True


def stop(netns: str, paths: LibvirtdPaths, pid: int | None) -> None:
    """Domains and networks first (their QEMU and dnsmasq would outlive libvirtd), then libvirtd, then strays."""
    if processes.alive(pid) and paths.socket.exists():
        _destroy_everything(paths.uri)
    processes.stop(pid)
    _kill_leftovers(netns)


def _destroy_everything(uri: str) -> None:
    import libvirt

    conn = _open(uri)
    if conn is None:
        return
    try:
        # All at once: a TCG guest takes ~1.7 s to destroy (QEMU's exit, its filters' teardown), mostly waiting.
        domains = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(domains)))) as pool:
            list(pool.map(lambda dom: _quietly(dom.destroy), domains))
        for net in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
            _quietly(net.destroy)
    finally:
        _quietly(conn.close)


def _open(uri: str):
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are handled here, not printed
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError:
        return None


def _quietly(fn) -> None:
    import libvirt

    try:
        fn()
    except libvirt.libvirtError as err:
        log.warning("libvirt during lab teardown: %s", err.get_error_message())


def leftovers(netns: str) -> list[int]:
    """QEMU and dnsmasq processes still running in the host's network namespace."""
    found = []
    for pid in namespaces.pids_in(netns):
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            continue
        if exe.startswith(LEFTOVER_PROGRAMS):
            found.append(pid)
    return found


def _kill_leftovers(netns: str, grace_s: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = leftovers(netns)
        if not pids:
            return
        log.warning("killing %s left in %s", pids, netns)
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while leftovers(netns) and time.monotonic() < deadline:
            time.sleep(0.05)
