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

Migration: a host's libvirtd listens with TLS on the host's lab address (`--listen`,
`listen_tls`, no plain TCP), with the agent's certificate from its libvirt PKI directory
(written at enrollment, then loaded with `virt-admin server-update-tls`), admitting only fleet hosts'
certificates (tls_allowed_dn_list: OU virtfleet-host; until enrollment writes the
host's certificate, a throwaway one nothing trusts), with a `host_uuid` of its own
(else libvirt refuses "to migrate guest to the same host") and `migration_host` /
`migration_address` = the host's address (else the destination advertises the
machine's hostname). A peer-to-peer migration then goes `qemu+tls://ADDRESS/system`
from one host's namespace to the other's over the lab switch.

Network filters: libvirtd's nwfilter driver reads its filters from /etc/libvirt/nwfilter,
which is private here, so each host gets libvirt's default filters (clean-traffic,
no-mac-spoofing, …) copied from Debian's libvirt-daemon-config-nwfilter, as that package
does for the machine's own. The rules they instantiate are ebtables/nft rules made by
the host's libvirtd, so they exist only in the host's network namespace.

/dev: libvirt opens a macvtap's device as /dev/tap<ifindex>, but ifindexes are per network namespace and
the lab's hosts share the machine's one devtmpfs: two hosts' macvtaps with the same ifindex would share one
node, the second host's QEMU reading the first host's queue. So each libvirtd (and every QEMU and dnsmasq
it starts: qemu.conf `namespaces = [ ]` keeps them in its mount namespace) has a private /dev: a tmpfs with
copies of the few device nodes they use (DEV_NODES), its own devpts and /dev/shm, and the /dev/tap<ifindex>
nodes of its own namespace's macvtaps, made by a watcher (`tapnodes`) that runs beside it. The machine's
/dev stays reachable inside that mount namespace at LibvirtdPaths.hostdev (for a look at it when debugging).
"""
from __future__ import annotations

import filecmp
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import namespaces, processes, tapnodes

log = logging.getLogger(__name__)

# (private directory name, the system directory it replaces inside the host's mount namespace)
PRIVATE_DIRS = (("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
                ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt"))
SEED_CACHE = Path("/var/cache/virtfleet/libvirt")   # survives `lab down`; refreshed when libvirt re-probed
MACHINE_CACHE = Path("/var/cache/libvirt")          # a system libvirtd's cache, used when we have none yet
QEMU_USER = "libvirt-qemu"                          # libvirtd refuses to start without it
LEFTOVER_PROGRAMS = ("qemu-system-", "dnsmasq")     # they outlive libvirtd and would keep a namespace alive
# The device nodes a lab libvirtd, QEMU and dnsmasq open: libvirt's default cgroup_device_acl (qemu.conf), the
# vhost and tun devices of vNICs, the controlling tty. Those the machine lacks (rtc, hpet, sev…) are skipped.
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty", "kvm", "userfaultfd", "rtc", "hpet", "sev",
             "vhost-net", "vhost-vsock", "net/tun")
DEV_LINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"))
DEFAULT_NWFILTERS = Path("/usr/share/libvirt/nwfilter")  # libvirt-daemon-config-nwfilter's pristine copies


# manager.pki.HOST_UNIT's certificates: gnutls prints a DN in subject order (`virt-pki-query-dn`); the
# reverse (RFC 4514) order too, for a gnutls that prints it so. Admins' and the manager's have no OU.
HOST_DN_PATTERNS = ("O=virtfleet,OU=virtfleet-host,CN=*", "CN=*,OU=virtfleet-host,O=virtfleet")
TLS_PORT = 16514
# libvirt's default certificate paths (a privileged libvirtd's) → the agent's flat libvirt PKI files. Only these
# does `virt-admin server-update-tls` reload (libvirt 9 ignores key_file/cert_file/ca_file then), so the lab
# links them here, in the host's private /etc/pki, rather than naming the files in libvirtd.conf.
PKI_LINKS = (("/etc/pki/CA/cacert.pem", "cacert.pem"), ("/etc/pki/libvirt/servercert.pem", "servercert.pem"),
             ("/etc/pki/libvirt/private/serverkey.pem", "serverkey.pem"),
             ("/etc/pki/libvirt/clientcert.pem", "clientcert.pem"),
             ("/etc/pki/libvirt/private/clientkey.pem", "clientkey.pem"))


@dataclass(frozen=True)
class LibvirtdTls:
    """One lab host's migration listener: its address, the agent's libvirt PKI directory, its own host UUID."""
    address: str
    pki_dir: Path
    host_uuid: str


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
    def admin_uri(self) -> str:
        return f"libvirtd:///system?socket={self.sock_dir / 'libvirt-admin-sock'}"

    @property
    def pid_file(self) -> Path:
        return self.root / "libvirtd.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "libvirtd.log"

    @property
    def hostdev(self) -> Path:
        """The machine's /dev, inside libvirtd's mount namespace only (an empty directory outside it)."""
        return self.root / "hostdev"

    @property
    def tapnodes_pid_file(self) -> Path:
        return self.root / "tapnodes.pid"


def libvirtd_conf(sock_dir: Path, tls: LibvirtdTls | None = None) -> str:
    """Unix sockets in the lab directory (root-only access stands in for polkit); with `tls`, also the
    migration listener on the host's address, for fleet hosts' certificates only."""
    lines = [
        f'unix_sock_dir = "{sock_dir}"',
        'unix_sock_group = "root"',
        'unix_sock_rw_perms = "0700"',
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
    ]
    if tls is not None:
        dns = ", ".join(f'"{p}"' for p in HOST_DN_PATTERNS)
        lines += [
            "listen_tls = 1",
            "listen_tcp = 0",
            f'listen_addr = "{tls.address}"',
            f'tls_port = "{TLS_PORT}"',
            'auth_tls = "none"',
            f"tls_allowed_dn_list = [{dns}]",
            f'host_uuid = "{tls.host_uuid}"',
        ]
    return "\n".join([*lines, ""])


def qemu_conf(migration_address: str = "") -> str:
    """Run as root without systemd, cgroups delegation, SELinux/AppArmor or virtlogd (DESIGN.md); an incoming
    migration listens on, and is advertised as, `migration_address`."""
    lines = [
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        "remember_owner = 0",
        'security_driver = "none"',
        'stdio_handler = "file"',
        "namespaces = [ ]",
    ]
    if migration_address:
        lines += [f'migration_host = "{migration_address}"', f'migration_address = "{migration_address}"']
    return "\n".join([*lines, ""])


def launch_command(netns: str, paths: LibvirtdPaths, cpu: int, tls: LibvirtdTls | None = None) -> list[str]:
    """`ip netns exec` → a private mount namespace → bind mounts → libvirtd pinned to `cpu`; with `tls`, its
    TLS listener too (without systemd socket activation libvirtd opens it only with --listen), its
    certificate files where libvirt looks by default (`pki_links`).

    Every step execs the next, so the pid spawned is libvirtd's own.
    """
    steps = ["set -e"]
    for name, target in PRIVATE_DIRS:
        steps.append(f"mkdir -p {target}")  # a mount point; the package's own directory when installed
        steps.append(f"mount --bind {shlex.quote(str(paths.private(name)))} {target}")
    if tls is not None:
        steps += ["mkdir -p /etc/pki", "mount -t tmpfs -o mode=0755 virtfleet-pki /etc/pki",
                  "mkdir -p /etc/pki/CA /etc/pki/libvirt/private"]
        steps += [f"ln -s {shlex.quote(str(tls.pki_dir / name))} {link}" for link, name in PKI_LINKS]
    steps += private_dev_steps(paths)
    steps.append(f"exec taskset -c {cpu} libvirtd -f /etc/libvirt/libvirtd.conf -p {shlex.quote(str(paths.pid_file))}"
                 + (" --listen" if tls is not None else ""))
    return ["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", "; ".join(steps)]


def private_dev_steps(paths: LibvirtdPaths) -> list[str]:
    """A private /dev (module docstring), then the watcher that gives it this namespace's macvtap nodes.

    The watcher gets the shell's pid, which becomes libvirtd's at the `exec` that follows, and exits with
    it; it returns once it listens and made the nodes already due, so libvirtd never starts before it.
    """
    hostdev = shlex.quote(str(paths.hostdev))
    steps = [f"mkdir -p {hostdev}", f"mount --rbind /dev {hostdev}",
             "mount -t tmpfs -o mode=0755,nosuid virtfleet-dev /dev",
             "mkdir -p /dev/net /dev/pts /dev/shm",
             f"for n in {' '.join(DEV_NODES)}; do if [ -e {hostdev}/$n ]; then cp -aL {hostdev}/$n /dev/$n; fi; done",
             "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 virtfleet-pts /dev/pts",
             "mount -t tmpfs -o mode=1777,nosuid,nodev virtfleet-shm /dev/shm"]
    steps += [f"ln -s {target} /dev/{name}" for target, name in DEV_LINKS]
    steps.append(f"{shlex.quote(sys.executable)} -m {tapnodes.MODULE} --libvirtd $$ "
                 f"--pid-file {shlex.quote(str(paths.tapnodes_pid_file))}")
    return steps


def tls_uri(address: str) -> str:
    """The URI a peer-to-peer migration's source libvirtd connects to (the agent adds `?pkipath=`)."""
    return f"qemu+tls://{address}/system"


def ensure_qemu_user() -> None:
    if subprocess.run(["id", "-u", QEMU_USER], capture_output=True).returncode == 0:
        return
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/libvirt",
                    "--shell", "/usr/sbin/nologin", QEMU_USER], check=True, capture_output=True)
    log.info("created the system user %s that libvirtd requires", QEMU_USER)


def prepare(paths: LibvirtdPaths, tls: LibvirtdTls | None = None) -> None:
    """Private directories with our configuration, the capability cache seeded when we have one."""
    for name, _ in PRIVATE_DIRS:
        paths.private(name).mkdir(parents=True, exist_ok=True)
    paths.sock_dir.mkdir(parents=True, exist_ok=True)
    (paths.private("etc") / "libvirtd.conf").write_text(libvirtd_conf(paths.sock_dir, tls))
    (paths.private("etc") / "qemu.conf").write_text(qemu_conf(tls.address if tls else ""))
    install_default_filters(paths.private("etc"))
    for seed in (SEED_CACHE, MACHINE_CACHE):
        if (seed / "qemu" / "capabilities").is_dir():
            shutil.copytree(seed, paths.private("cache"), dirs_exist_ok=True)
            break


def ensure_placeholder_certificate(pki_dir: Path) -> bool:
    """A throwaway CA and a key and certificate from it where the host's are not written yet (before
    enrollment), so libvirtd's TLS listener can start; only that CA is trusted, and its key is discarded, so
    nothing can connect. True when written; `reload_tls` after enrollment swaps in the real ones."""
    names = ("cacert.pem", "servercert.pem", "serverkey.pem", "clientcert.pem", "clientkey.pem")
    if all((pki_dir / n).exists() for n in names):
        return False
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _placeholder_cert("virtfleet lab placeholder CA", ca_key.public_key(), ca_key, None)
    cert = _placeholder_cert("virtfleet lab placeholder", key.public_key(), ca_key, ca)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files = {"cacert.pem": ca.public_bytes(pem), "servercert.pem": cert.public_bytes(pem), "serverkey.pem": key_pem,
             "clientcert.pem": cert.public_bytes(pem), "clientkey.pem": key_pem}
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for n, data in files.items():
        path = pki_dir / n
        path.write_bytes(data)
        path.chmod(0o600 if "key" in n else 0o644)
    return True


def _placeholder_cert(common_name: str, public_key, signer, issuer):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))


def reload_tls(paths: LibvirtdPaths) -> None:
    """libvirtd loads its TLS files again (`virt-admin server-update-tls`): the host's certificate, written at
    enrollment, replaces the placeholder it started with."""
    done = subprocess.run(["virt-admin", "-c", paths.admin_uri, "server-update-tls", "libvirtd"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise LibvirtdError(f"libvirtd did not load the host's certificate: {done.stderr.strip()}; "
                            f"see {paths.log_file}")


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


def start(netns: str, paths: LibvirtdPaths, *, timeout_s: float = 120.0, tls: LibvirtdTls | None = None) -> int:
    """Starts libvirtd for one host and waits until it answers with QEMU's capabilities (probed or cached);
    with `tls`, listening for migrations (its certificate files must exist)."""
    ensure_qemu_user()
    prepare(paths, tls)
    if tls is not None:
        ensure_placeholder_certificate(tls.pki_dir)
    cpu = min(os.sched_getaffinity(0))
    pid = processes.spawn(launch_command(netns, paths, cpu, tls), paths.log_file)
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
    _kill_leftovers(netns)   # the tapnodes watcher exits with libvirtd, or here
    paths.tapnodes_pid_file.unlink(missing_ok=True)
    try:
        paths.hostdev.rmdir()   # empty here: the machine's /dev was mounted on it only in libvirtd's namespace
    except FileNotFoundError:
        pass


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
    """QEMU, dnsmasq and the tapnodes watcher still running in the host's network namespace."""
    found = []
    for pid in namespaces.pids_in(netns):
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if exe.startswith(LEFTOVER_PROGRAMS) or is_tapnodes(argv):
            found.append(pid)
    return found


def is_tapnodes(argv: list[bytes]) -> bool:
    """A tapnodes watcher's command line (`python -m manager.lab.tapnodes …`)."""
    return any(a == b"-m" and b == tapnodes.MODULE.encode() for a, b in zip(argv, argv[1:]))


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
