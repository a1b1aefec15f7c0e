"""This agent's certificate, renewed as the manager drives it, served without restarting the server.

The agent has no channel of its own to the manager: the manager calls
`PrepareRenewal` (a new key, kept pending on disk, and a CSR for it), signs the
CSR, then calls `InstallCertificate` with the certificate and the CAs to trust.
The pending key is on disk (0600) so an agent restarted between the two calls
can still install the certificate signed for it; an agent killed while saving
(cert.pem replaced, key.pem not yet) finds the key that matches in the pending
file at start (`load_material`).

The gRPC server's credentials are dynamic (`grpc.dynamic_ssl_server_credentials`):
gRPC asks `ServerCertificates._fetch` before each new handshake, so a new
certificate or trust bundle is used by the next connection while connections
already open keep working — no restart, no dropped call.

The previous certificate is served beside the new one (`previous-cert.pem`,
`previous-key.pem`), chosen by the name the caller asks for (TLS SNI: the manager
asks for the pin of the certificate it stored). A manager that installed a
certificate but could not store it (a crash, its database away) still reaches the
agent with the pin it has, and renews again; without it the host would be lost
until enrolled again.

libvirtd's copy (agent.virt.libvirt_pki, for live migration over TLS) follows every
change: written after each install or trust change, and libvirtd asked to reload it.

Safety: whatever is installed must still let the manager in. The certificate must
be for the pending key and signed by a CA of the new bundle, and the bundle must
verify the calling manager's own certificate; otherwise nothing changes.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from virtfleet import failpoints
from virtfleet.enroll import key_pem, new_key, subject
from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.tls import TlsMaterial
from virtfleet.v1 import agent_pb2

from ..virt import libvirt_pki
from .guard import manager_only

PENDING_KEY = "pending-key.pem"
PREVIOUS_CERT = "previous-cert.pem"
PREVIOUS_KEY = "previous-key.pem"


def load_material(pki_dir: Path) -> TlsMaterial:
    """The saved material; a save cut short between cert.pem and key.pem is finished with the pending key."""
    material = TlsMaterial.load(pki_dir)
    pending = pki_dir / PENDING_KEY
    if not _key_matches(material.key_pem, material.cert_pem) and pending.exists() \
            and _key_matches(pending.read_bytes(), material.cert_pem):
        material = TlsMaterial(material.ca_pem, material.cert_pem, pending.read_bytes())
        material.save(pki_dir)
        pending.unlink()
    return material


class ServerCertificates:
    """The agent's key, certificate and trusted CAs; a change is picked up by the server's next handshake."""

    def __init__(self, pki_dir: Path, material: TlsMaterial, *, libvirt_pki_dir: Path | None = None,
                 libvirt_uri: str = "") -> None:
        self._pki_dir = pki_dir
        self._libvirt_pki_dir = libvirt_pki_dir
        self._libvirt_uri = libvirt_uri
        self._material = material
        self._previous = _load_previous(pki_dir)
        self._lock = threading.Lock()
        self._changed: grpc.ServerCertificateConfiguration | None = None

    @property
    def material(self) -> TlsMaterial:
        return self._material

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(_configuration(self._material, self._previous), self._fetch,
                                                   require_client_authentication=True)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before every handshake: the new configuration once, then None (no change)."""
        with self._lock:
            changed, self._changed = self._changed, None
        return changed

    def prepare(self) -> bytes:
        """A new pending key (replacing any earlier one) and a CSR for it; the served certificate stays."""
        with self._lock:
            key = new_key()
            _save_private(self._pki_dir / PENDING_KEY, key_pem(key))
            name = x509.load_pem_x509_certificate(self._material.cert_pem).subject
            common_name = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
            csr = x509.CertificateSigningRequestBuilder().subject_name(subject(str(common_name)))
            return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def install(self, cert_pem: bytes, bundle_pem: bytes, caller_pem: bytes) -> None:
        with self._lock:
            pending = self._pki_dir / PENDING_KEY
            if not pending.exists():
                raise FailedPrecondition("no renewal is pending on this host (call PrepareRenewal first)")
            key = pending.read_bytes()
            cert = _certificate(cert_pem, "cert_pem")
            if not _key_matches(key, cert_pem):
                raise FailedPrecondition("the certificate is not for this host's pending key (a newer "
                                         "PrepareRenewal replaced it); nothing changed")
            cas = _bundle(bundle_pem, caller_pem)
            if not any(_signed_by(cert, ca) for ca in cas):
                raise InvalidArgument("ca_bundle_pem", "no CA of the bundle signed the certificate")
            failpoints.hit("agent.certificates.install")
            previous = (self._material.key_pem, self._material.cert_pem)
            _save_private(self._pki_dir / PREVIOUS_KEY, previous[0])
            _save_private(self._pki_dir / PREVIOUS_CERT, previous[1])
            material = TlsMaterial(bundle_pem, cert_pem, key)
            material.save(self._pki_dir)
            pending.unlink()
            self._previous = previous
            self._switch(material)

    def trust(self, bundle_pem: bytes, caller_pem: bytes) -> None:
        with self._lock:
            _bundle(bundle_pem, caller_pem)
            material = TlsMaterial(bundle_pem, self._material.cert_pem, self._material.key_pem)
            material.save(self._pki_dir)
            self._switch(material)

    def _switch(self, material: TlsMaterial) -> None:
        self._material = material
        self._changed = _configuration(material, self._previous)
        if self._libvirt_pki_dir is not None:
            libvirt_pki.install(self._libvirt_pki_dir, material, self._libvirt_uri)


class CertificateRpcs:
    """The certificate methods of AgentService (mixed into agent.rpc.network.AgentServicer)."""

    certificates: ServerCertificates

    @manager_only
    def PrepareRenewal(self, request, context):
        return agent_pb2.PrepareRenewalResponse(csr_pem=self.certificates.prepare())

    @manager_only
    def InstallCertificate(self, request, context):
        self.certificates.install(request.cert_pem, request.ca_bundle_pem, _caller_pem(context))
        return agent_pb2.InstallCertificateResponse()

    @manager_only
    def TrustBundle(self, request, context):
        self.certificates.trust(request.ca_bundle_pem, _caller_pem(context))
        return agent_pb2.TrustBundleResponse()


def _configuration(material: TlsMaterial, previous: tuple[bytes, bytes] | None) -> grpc.ServerCertificateConfiguration:
    """The current pair first (served when the caller names no pin of ours), the previous one after it."""
    pairs = [(material.key_pem, material.cert_pem)]
    if previous is not None and previous[1] != material.cert_pem:
        pairs.append(previous)
    return grpc.ssl_server_certificate_configuration(pairs, root_certificates=material.ca_pem)


def _load_previous(pki_dir: Path) -> tuple[bytes, bytes] | None:
    """The pair served before the last renewal, while it is still valid."""
    key_path, cert_path = pki_dir / PREVIOUS_KEY, pki_dir / PREVIOUS_CERT
    if not (key_path.exists() and cert_path.exists()):
        return None
    key, cert = key_path.read_bytes(), cert_path.read_bytes()
    if not _key_matches(key, cert):
        return None
    if x509.load_pem_x509_certificate(cert).not_valid_after_utc <= dt.datetime.now(dt.timezone.utc):
        return None
    return key, cert


def _caller_pem(context: grpc.ServicerContext) -> bytes:
    certs = context.auth_context().get("x509_pem_cert", [])
    return certs[0] if certs else b""


def _certificate(pem: bytes, field: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidArgument(field, f"not a PEM certificate: {exc}") from None


def _bundle(bundle_pem: bytes, caller_pem: bytes) -> list[x509.Certificate]:
    """The CAs of a bundle, which must still let in the manager that sent it."""
    try:
        cas = x509.load_pem_x509_certificates(bundle_pem)
    except ValueError as exc:
        raise InvalidArgument("ca_bundle_pem", f"not PEM CA certificates: {exc}") from None
    caller = _certificate(caller_pem, "caller")
    if not any(_signed_by(caller, ca) for ca in cas):
        raise InvalidArgument("ca_bundle_pem", "no CA of the bundle signed the calling manager's certificate: "
                              "installing it would lock the manager out")
    return cas


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _key_matches(key_pem_bytes: bytes, cert_pem: bytes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        key = serialization.load_pem_private_key(key_pem_bytes, password=None)
        cert_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    except ValueError:
        return False
    return (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == cert_key.public_bytes(serialization.Encoding.DER, spki))


def _save_private(path: Path, data: bytes) -> None:
    """As TlsMaterial.save writes key.pem: replaced whole, 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)

