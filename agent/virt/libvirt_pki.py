"""The host's libvirtd certificates, from the agent's own: libvirt's flat `pki` layout in one directory.

Live migration runs peer to peer between the hosts' libvirtds over TLS. Each
libvirtd is a TLS server (a peer connects to it) and a TLS client (it connects to
the destination with `?pkipath=DIR`), and the manager's CA issued the agent's
certificate for both (manager.pki.sign_agent_csr: server and client auth, OU
virtfleet-host, which each libvirtd's tls_allowed_dn_list admits). So the files
are the agent's key and certificate under libvirt's names — no second key, no
second enrollment, and a renewal of the agent's certificate renews libvirt's.

Written at enrollment, at agent start and after every renewal or trust change
(agent.rpc.certificates); libvirtd is then asked to reload its server side
(`virt-admin server-update-tls libvirtd`); its client side reads DIR on every
connection it opens. Pure part: `files`; the rest writes and asks.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from virtfleet.tls import TlsMaterial, replace_file

log = logging.getLogger(__name__)

CA_CERT = "cacert.pem"
SERVER_CERT = "servercert.pem"
SERVER_KEY = "serverkey.pem"
CLIENT_CERT = "clientcert.pem"
CLIENT_KEY = "clientkey.pem"
ADMIN_SOCKET = "libvirt-admin-sock"   # beside libvirt-sock in libvirtd's unix_sock_dir


def files(material: TlsMaterial) -> dict[str, tuple[bytes, int]]:
    """File name → (content, mode) of libvirt's flat pki layout for this material; keys 0600."""
    return {
        CA_CERT: (material.ca_pem, 0o644),
        SERVER_CERT: (material.cert_pem, 0o644),
        SERVER_KEY: (material.key_pem, 0o600),
        CLIENT_CERT: (material.cert_pem, 0o644),
        CLIENT_KEY: (material.key_pem, 0o600),
    }


def write(directory: Path, material: TlsMaterial) -> bool:
    """The layout in `directory` (0700), each changed file replaced whole; True when anything changed."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    changed = False
    for name, (data, mode) in files(material).items():
        path = directory / name
        try:
            same = path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode
        except OSError:
            same = False
        if not same:
            replace_file(path, data, mode)
            changed = True
    return changed


def admin_uri(libvirt_uri: str) -> str | None:
    """The libvirtd admin URI beside the agent's libvirt URI (a lab host's socket directory); None for a
    driver without a daemon (test:///, qemu:///embed)."""
    parts = urlsplit(libvirt_uri)
    if parts.scheme in ("test", "") or parts.path.startswith("/embed"):
        return None
    socket = parse_qs(parts.query).get("socket", [""])[0]
    if socket:
        return f"libvirtd:///system?socket={Path(socket).with_name(ADMIN_SOCKET)}"
    return "libvirtd:///system"


def reload_server_tls(libvirt_uri: str) -> bool:
    """Asks the host's libvirtd to load the new files for its TLS listener; False (logged) when it could not
    (no virt-admin, libvirtd down or not listening on TLS): it reads them at its next start anyway."""
    uri = admin_uri(libvirt_uri)
    virt_admin = shutil.which("virt-admin")
    if uri is None or virt_admin is None:
        return False
    done = subprocess.run([virt_admin, "-c", uri, "server-update-tls", "libvirtd"], capture_output=True, text=True,
                          timeout=30)
    if done.returncode != 0:
        log.warning("libvirtd did not reload its TLS certificates (%s): %s", uri, done.stderr.strip())
        return False
    return True


def install(directory: Path, material: TlsMaterial, libvirt_uri: str) -> None:
    """Writes the layout and, when it changed, has libvirtd reload it; never fails the caller (logged)."""
    try:
        if write(directory, material):
            reload_server_tls(libvirt_uri)
    except (OSError, subprocess.SubprocessError) as err:
        log.error("could not install libvirt's TLS certificates in %s: %s", directory, err)
