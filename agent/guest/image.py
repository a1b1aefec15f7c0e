"""The test guest's kernel and initramfs: built once per package set, cached, shared by every builder.

`ensure_guest()` is what callers use. The cache directory holds one subdirectory per
key (kernel release + a hash of the package versions and INIT_VERSION) with
`vmlinuz`, `initrd.img` and `manifest.json`. A build takes a file lock on the cache
(several lab hosts' agents and parallel tests share it), checks again under the lock,
builds in a private directory beside the result and renames it into place, so a
reader sees a whole guest or none, and a killed build leaves only a `.build-*`
directory the next build removes.

How (DESIGN.md "A guest with an OS"): `apt-get download` the versioned cloud kernel,
busybox-static and qemu-guest-agent, `dpkg-deb -x` them; `ldd` names qemu-ga's
libraries and `dpkg -S` their packages, which are fetched and unpacked too; busybox's
own `depmod -b` writes the modules.dep the .deb lacks, and `cpio -o -H newc` packs the
initramfs (the machine has neither kmod nor cpio). Only the unpacked tree's files go
in: the absolute /lib64/ld-linux-x86-64.so.2 symlink is resolved inside the tree, not
on the machine. The key covers the kernel, busybox, qemu-ga and qemu-ga's direct
library dependencies; a library further down that changes does not rebuild the guest.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from virtfleet.errors import FailedPrecondition

from . import packages
from .cmdline import BASE_CMDLINE
from .init_script import INIT_VERSION, MODULES, files

DEFAULT_CACHE = Path("/var/cache/virtfleet/guest")
CACHE_ENV = "VIRTFLEET_GUEST_CACHE"
LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib")
LOADER = "lib64/ld-linux-x86-64.so.2"
QEMU_GA = "usr/sbin/qemu-ga"


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    cmdline: str          # the guest's own (console on ttyS0); callers append theirs
    key: str
    built: bool           # False: found in the cache


def cache_dir(configured: Path | str | None = None) -> Path:
    """The agent's setting wins, then $VIRTFLEET_GUEST_CACHE, then /var/cache/virtfleet/guest."""
    return Path(configured or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def ensure_guest(cache: Path | str | None = None) -> GuestImage:
    """The cached guest for the current package versions, built first if missing (about 20 s, once).

    Which versions are current is asked of apt (~2 s) once per package-list update
    (the mtime of apt's lists) per process: a VM start must not pay it each time.
    """
    root = cache_dir(cache)
    lists = APT_LISTS.stat().st_mtime_ns if APT_LISTS.exists() else 0
    known = _resolved.get(root)
    if known is not None and known[0] == lists and _cached(root / known[1]) is not None:
        return _cached(root / known[1])
    root.mkdir(parents=True, exist_ok=True)
    deps = packages.dependencies(packages.KERNEL_META, packages.GUEST_AGENT)
    kernel_pkg = packages.kernel_package(deps.get(packages.KERNEL_META, []))
    release = packages.kernel_release(kernel_pkg)
    libs = sorted({d for d in deps.get(packages.GUEST_AGENT, []) if d.startswith("lib")})
    versions = packages.candidates([kernel_pkg, packages.BUSYBOX, packages.GUEST_AGENT, *libs])
    wanted = versions[:3]
    key = cache_key(release, versions)
    image = _cached(root / key) or _build_locked(root, key, release, wanted)
    _resolved[root] = (lists, key)
    return image


APT_LISTS = Path("/var/lib/apt/lists")
_resolved: dict[Path, tuple[int, str]] = {}


def _build_locked(root: Path, key: str, release: str, wanted: list[packages.Package]) -> GuestImage:
    with _locked(root / ".lock"):
        found = _cached(root / key)   # another builder may have finished while we waited
        if found:
            return found
        _remove_stale_builds(root)
        work = root / f".build-{os.getpid()}-{time.monotonic_ns()}"
        try:
            out = _build(work, release, wanted, key)
            os.rename(out, root / key)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    image = _cached(root / key)
    assert image is not None
    return GuestImage(image.kernel, image.initrd, image.cmdline, key, built=True)


def cache_key(kernel_release: str, pkgs: list[packages.Package]) -> str:
    digest = hashlib.sha256("\n".join([f"init={INIT_VERSION}", *sorted(map(str, pkgs))]).encode()).hexdigest()
    return f"{kernel_release}-{digest[:16]}"


def _cached(path: Path) -> GuestImage | None:
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return None
    return GuestImage(kernel=path / "vmlinuz", initrd=path / "initrd.img", cmdline=BASE_CMDLINE, key=path.name,
                      built=False)


class _locked:
    """An exclusive flock on the cache: one builder at a time across processes and hosts of this machine."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _remove_stale_builds(root: Path) -> None:
    """Under the lock no build runs, so every .build-* is a killed builder's leftover."""
    for left in root.glob(".build-*"):
        shutil.rmtree(left, ignore_errors=True)


# --- the build ------------------------------------------------------------------------------

def _build(work: Path, release: str, wanted: list[packages.Package], key: str) -> Path:
    tree, staging, out = work / "tree", work / "initramfs", work / key
    debs = packages.download(wanted, work / "debs")
    packages.unpack(debs, tree)
    busybox = tree / "bin" / "busybox"
    lib_pkgs = packages.owners(_host_library_paths(tree / QEMU_GA))
    libs = packages.candidates(lib_pkgs)
    packages.unpack(packages.download(libs, work / "debs"), tree)

    _copy_file(busybox, staging / "bin" / "busybox")
    _copy_file(tree / QEMU_GA, staging / QEMU_GA)
    for soname in _sonames(tree / QEMU_GA):
        _copy_file(_in_tree(tree, soname), staging / "lib" / "x86_64-linux-gnu" / soname)
    _copy_file(_resolve_in_tree(tree, tree / LOADER), staging / LOADER)
    _copy_modules(busybox, tree, staging, release)
    for rel, text in files().items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    out.mkdir(parents=True)
    _copy_file(tree / "boot" / f"vmlinuz-{release}", out / "vmlinuz")
    _pack(busybox, staging, out / "initrd.img")
    (out / "manifest.json").write_text(json.dumps({
        "key": key, "kernel_release": release, "init_version": INIT_VERSION, "modules": list(MODULES),
        "packages": [str(p) for p in wanted + libs], "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n")
    return out


def _ldd(binary: Path) -> list[tuple[str, str]]:
    """(soname, host path) of every library the binary needs, transitively, as the host's loader resolves them."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60)
    found = []
    for line in done.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if not arrow:
            continue
        path = rest.split(" (")[0].strip()
        if path == "not found":
            raise FailedPrecondition(f"building the test guest: qemu-ga needs {name}, which this host does not have "
                                     "(ldd names the libraries by the host's copies)")
        found.append((name, path))
    if done.returncode != 0 or not found:
        raise FailedPrecondition(f"building the test guest: ldd {binary} failed: {done.stderr.strip()}")
    return found


def _host_library_paths(binary: Path) -> list[str]:
    return [path for _, path in _ldd(binary)]


def _sonames(binary: Path) -> list[str]:
    return [name for name, _ in _ldd(binary)]


def _resolve_in_tree(tree: Path, path: Path) -> Path:
    """Follow symlinks with `tree` as /: the .debs' absolute links point into the tree, not the machine."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = tree / target.lstrip("/") if target.startswith("/") else path.parent / target
    raise FailedPrecondition(f"building the test guest: symlink loop at {path}")


def _in_tree(tree: Path, soname: str) -> Path:
    for d in LIB_DIRS:
        if os.path.lexists(tree / d / soname):
            return _resolve_in_tree(tree, tree / d / soname)
    raise FailedPrecondition(f"building the test guest: {soname} is in none of the unpacked packages")


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    shutil.copymode(src, dst)


def _copy_modules(busybox: Path, tree: Path, staging: Path, release: str) -> None:
    """MODULES and what they depend on (busybox depmod over the whole kernel), then modules.dep for just those."""
    _busybox(busybox, "depmod", "-b", str(tree), release)
    moddir = Path("lib/modules") / release
    deps = _modules_dep((tree / moddir / "modules.dep").read_text())
    by_name = {Path(p).name.split(".ko")[0].replace("-", "_"): p for p in deps}
    chosen: set[str] = set()
    todo = []
    for m in MODULES:
        if m not in by_name:
            raise FailedPrecondition(f"building the test guest: kernel {release} has no module {m}")
        todo.append(by_name[m])
    while todo:
        path = todo.pop()
        if path not in chosen:
            chosen.add(path)
            todo.extend(deps[path])
    for path in chosen:
        _copy_file(tree / moddir / path, staging / moddir / path)
    for meta in ("modules.builtin", "modules.order"):
        _copy_file(tree / moddir / meta, staging / moddir / meta)
    _busybox(busybox, "depmod", "-b", str(staging), release)


def _modules_dep(text: str) -> dict[str, list[str]]:
    deps = {}
    for line in text.splitlines():
        mod, sep, rest = line.partition(":")
        if sep:
            deps[mod.strip()] = rest.split()
    return deps


def _busybox(busybox: Path, *args: str, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([str(busybox), *args], cwd=cwd, input=stdin, capture_output=True, timeout=300)
    if done.returncode != 0:
        raise FailedPrecondition(f"building the test guest: busybox {' '.join(args)} failed: "
                                 f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _pack(busybox: Path, staging: Path, initrd: Path) -> None:
    """newc cpio of the staging tree (parents before children, sorted), gzip-compressed."""
    names = ["."]
    for dirpath, dirnames, filenames in os.walk(staging):
        dirnames.sort()
        rel = Path(dirpath).relative_to(staging)
        names += [str(Path(".") / rel / n) if str(rel) != "." else f"./{n}" for n in sorted(dirnames + filenames)]
    archive = _busybox(busybox, "cpio", "-o", "-H", "newc", cwd=staging, stdin=("\n".join(names) + "\n").encode())
    with gzip.open(initrd, "wb", compresslevel=6) as f:
        f.write(archive)
