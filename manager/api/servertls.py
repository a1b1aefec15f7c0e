"""TLS server credentials of the manager's own listeners (remote fleet API, enrollment) that follow
the CA: after `pki rotate-ca` or a retirement, the next handshake trusts the new set of CAs and
presents a server certificate from the active CA, without a restart.

grpc's dynamic server credentials ask `fetch` at every handshake; it only compares the CA's
trust generation, so the certificate is remade once per change (CertificateAuthority.
manager_server_material keeps it on disk).
"""
from __future__ import annotations

import threading

import grpc

from virtfleet.tls import TlsMaterial

from ..pki import CertificateAuthority


class FollowingCa:
    def __init__(self, ca: CertificateAuthority, names: list[str], *, client_auth: bool) -> None:
        self._ca = ca
        self._names = names
        self._client_auth = client_auth
        self._lock = threading.Lock()
        self._generation = ca.generation
        self.material = ca.manager_server_material(names)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._configuration(self.material), self._fetch,
                                                   require_client_authentication=self._client_auth)

    def _configuration(self, material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(material.key_pem, material.cert_pem)], material.ca_pem if self._client_auth else None)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None: keep the current configuration (the CA did not change since)."""
        with self._lock:
            if self._ca.generation == self._generation:
                return None
            self._generation = self._ca.generation
            self.material = self._ca.manager_server_material(self._names)
            return self._configuration(self.material)
