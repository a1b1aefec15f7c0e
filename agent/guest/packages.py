"""Debian packages for the test guest: names, candidate versions, download and unpack; nothing is installed.

Only `apt-get download` (into a directory of ours) and `dpkg-deb -x` touch packages;
`apt-cache` and `dpkg -S` are read-only queries of the host's package lists.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from virtfleet.errors import FailedPrecondition, Unavailable

KERNEL_META = "linux-image-cloud-amd64"   # the cloud flavour: virtio, ACPI PCI hot-plug, small
KERNEL_PATTERN = re.compile(r"^linux-image-(\d[\w.+-]*-cloud-amd64)$")
BUSYBOX = "busybox-static"
GUEST_AGENT = "qemu-guest-agent"


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


def query(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as err:
        raise FailedPrecondition(f"building the test guest needs {argv[0]} (Debian's apt and dpkg)") from err
    if done.returncode != 0:
        raise Unavailable(f"building the test guest: {' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def dependencies(*names: str) -> dict[str, list[str]]:
    """Each package's Depends (one `apt-cache depends` for all: each call reads the whole package list)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in query(["apt-cache", "depends", *names]).splitlines():
        if not line.startswith(" "):
            current = found.setdefault(line.strip(), [])
            continue
        kind, _, name = line.strip().partition(": ")
        if current is not None and kind == "Depends" and not name.startswith("<"):
            current.append(name)
    return found


def kernel_package(meta_depends: list[str]) -> str:
    """The versioned image the meta-package depends on now (linux-image-6.1.0-NN-cloud-amd64)."""
    for name in meta_depends:
        if KERNEL_PATTERN.match(name):
            return name
    raise FailedPrecondition(f"{KERNEL_META} depends on no linux-image-*-cloud-amd64 in this host's package lists")


def kernel_release(package: str) -> str:
    """The directory under /lib/modules (and the vmlinuz suffix) of a versioned kernel image package."""
    match = KERNEL_PATTERN.match(package)
    if not match:
        raise ValueError(f"{package!r} is not a linux-image-*-cloud-amd64 package")
    return match.group(1)


def candidates(names: list[str]) -> list[Package]:
    """The versions `apt-get download NAME` fetches, in the order asked."""
    found: dict[str, str] = {}
    current = ""
    for line in query(["apt-cache", "policy", *names]).splitlines():
        if not line.startswith(" "):
            current = line.strip().rstrip(":")
            continue
        key, _, value = line.strip().partition(": ")
        if key == "Candidate" and value and value != "(none)":
            found[current] = value
    missing = [n for n in names if n not in found]
    if missing:
        raise FailedPrecondition(f"packages {', '.join(missing)} have no candidate in this host's package lists "
                                 "(apt-get update?)")
    return [Package(n, found[n]) for n in names]


def download(packages: list[Package], into: Path) -> list[Path]:
    """Exactly these versions, as .deb files in `into` (root fetches unsandboxed: `into` is not _apt's)."""
    into.mkdir(parents=True, exist_ok=True)
    before = set(into.glob("*.deb"))
    try:
        query(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *map(str, packages)], cwd=into)
    except Unavailable as err:
        # An agent in a network namespace without a route (every lab host) cannot fetch: say how to build it.
        raise FailedPrecondition(f"{err}; the test guest is not cached yet and this host cannot fetch its "
                                 "packages: build it where the Debian mirror is reachable, with "
                                 "`python -m agent.guest` (a lab: `virtfleet lab up --guest`)") from None
    return sorted(set(into.glob("*.deb")) - before)


def unpack(debs: list[Path], tree: Path) -> None:
    for deb in debs:
        query(["dpkg-deb", "-x", str(deb), str(tree)])


def owners(paths: list[str]) -> list[str]:
    """The host's packages that hold these library files (`dpkg -S`): the guest gets the same packages."""
    names: set[str] = set()
    for path in paths:
        real = str(Path(path).resolve())
        out = ""
        for candidate_path in (real, path):
            try:
                out = query(["dpkg", "-S", candidate_path])
                break
            except Unavailable:
                continue
        if not out:
            raise FailedPrecondition(f"no package of this host holds {path}; qemu-ga needs it")
        names.add(out.split(":", 1)[0].strip())
    return sorted(names)
