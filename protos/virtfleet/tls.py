"""Mutual-TLS rules shared by the manager and its agents.

Both ends trust only the manager's CA. An agent additionally accepts calls
only from the manager's own certificate (by common name), so one enrolled
host cannot drive another host's agent with its certificate.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

MANAGER_COMMON_NAME = "virtfleet-manager"
DEFAULT_AGENT_PORT = 54321

CA_FILE = "ca.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of one party: its key, its certificate, and the CA it trusts."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def load(cls, pki_dir: Path) -> "TlsMaterial":
        return cls(
            ca_pem=(pki_dir / CA_FILE).read_bytes(),
            cert_pem=(pki_dir / CERT_FILE).read_bytes(),
            key_pem=(pki_dir / KEY_FILE).read_bytes(),
        )

    def save(self, pki_dir: Path) -> None:
        """Each file replaced whole (a crash leaves the old one or the new one), the key 0600 and the
        directory 0700 even when they existed before with wider modes."""
        pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(pki_dir, 0o700)
        replace_file(pki_dir / CA_FILE, self.ca_pem, 0o644)
        replace_file(pki_dir / CERT_FILE, self.cert_pem, 0o644)
        replace_file(pki_dir / KEY_FILE, self.key_pem, 0o600)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Replaced whole (a crash leaves the old file or the new one), with exactly `mode`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not narrow or a stale mode widen it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def grpc_target(endpoint: str) -> str:
    """Accept `unix:///path`, `/path` or `host:port` and return a gRPC target."""
    if endpoint.startswith("/"):
        return "unix://" + endpoint
    return endpoint


def peer_common_names(context: grpc.ServicerContext) -> list[str]:
    auth = context.auth_context()
    return [v.decode() for v in auth.get("x509_common_name", [])]


NOT_MANAGER = "only the virtfleet manager may call this agent"


def is_manager(context: grpc.ServicerContext) -> bool:
    """Any certificate our CA signed gets through TLS; only the manager's may call an agent."""
    return MANAGER_COMMON_NAME in peer_common_names(context)
