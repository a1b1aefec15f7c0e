"""The test guest is built from Debian packages at first use and then found in the cache.

Needs apt's package lists and network access to the Debian mirror the first time
(later runs hit the machine-wide cache, /var/cache/virtfleet/guest).
"""
from __future__ import annotations

import gzip
import shutil

import pytest

from agent.guest.cmdline import BASE_CMDLINE
from agent.guest.image import ensure_guest
from agent.guest.init_script import AGENT_PORT, INIT_VERSION

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
                                reason="building the test guest needs Debian's apt-get and dpkg-deb")


@pytest.fixture(scope="module")
def image():
    return ensure_guest()


def cpio_names(initrd) -> set[str]:
    """Entry names of a newc archive, read by hand (the machine has no cpio)."""
    data = gzip.decompress(initrd.read_bytes())
    names, pos = set(), 0
    while pos + 110 <= len(data):
        header = data[pos:pos + 110]
        assert header[:6] == b"070701", "not a newc archive"
        filesize, namesize = int(header[54:62], 16), int(header[94:102], 16)
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            break
        names.add(name.removeprefix("./"))
        pos = (pos + 110 + namesize + 3) & ~3
        pos = (pos + filesize + 3) & ~3
    return names


def test_the_cache_holds_a_kernel_and_an_initramfs(image):
    assert image.kernel.is_file() and image.kernel.stat().st_size > 1_000_000
    assert image.initrd.is_file()
    assert image.cmdline == BASE_CMDLINE
    assert image.key.startswith("6.") or "-cloud-amd64-" in image.key
    assert (image.kernel.parent / "manifest.json").is_file()


def test_the_initramfs_has_init_busybox_qemu_ga_its_loader_and_the_virtio_modules(image):
    names = cpio_names(image.initrd)
    assert {"init", "bin/busybox", "usr/sbin/qemu-ga", "lib64/ld-linux-x86-64.so.2",
            "lib/x86_64-linux-gnu/libglib-2.0.so.0", "etc/udhcpc.script", "sbin/shutdown"} <= names
    dep = next(n for n in names if n.endswith("/modules.dep"))
    data = gzip.decompress(image.initrd.read_bytes())
    assert b"virtio_net.ko:" in data and b"virtio_pci.ko:" in data and b"virtio_console.ko:" in data
    assert dep.startswith("lib/modules/") and any(n.endswith("/virtio_net.ko") for n in names)
    assert f"/init, version {INIT_VERSION}".encode() in data and AGENT_PORT.encode() in data


def test_a_second_call_is_a_cache_hit(image):
    again = ensure_guest()
    assert not again.built
    assert (again.kernel, again.initrd, again.key) == (image.kernel, image.initrd, image.key)

