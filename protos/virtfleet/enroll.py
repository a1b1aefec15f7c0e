"""The enrolling side of host enrollment: make a key and CSR, ask the manager to sign it.

Two paths. With a token (`virtfleet-agent enroll`, run on the host, and the lab):
the host fetches the CA the manager's enrollment listener presents, trusts it
only if its SHA-256 fingerprint is the one the admin was given (`host add`
prints it), then sends its CSR and token over TLS checked against that CA.
Offline (`virtfleet host add --pki-out`): the key is made where the CLI runs.
Either way the private key is written only to the agent's PKI directory; the
manager sees the CSR alone.
"""
from __future__ import annotations

import hashlib
import re
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

import grpc

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import InvalidArgument, PermissionDenied
from .tls import MANAGER_COMMON_NAME, TlsMaterial, grpc_target
from .v1 import fleet_pb2, fleet_pb2_grpc, pki_pb2, pki_pb2_grpc

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def subject(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "virtfleet"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_key_and_csr(common_name: str) -> tuple[bytes, bytes]:
    """Made on the enrolling side so the private key stays there."""
    key = new_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject(common_name)).sign(key, hashes.SHA256())
    return key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def enroll_host(
    stub: fleet_pb2_grpc.FleetServiceStub, *, name: str, address: str, endpoint: str = "", cluster: str = "",
    pki_out: Path, nic_labels: Sequence[fleet_pb2.NicLabel] = (),
) -> fleet_pb2.Host:
    key, csr_pem = make_key_and_csr(name)
    reply = stub.EnrollHost(
        fleet_pb2.EnrollHostRequest(name=name, address=address, endpoint=endpoint, cluster=cluster, csr_pem=csr_pem,
                                    nic_labels=nic_labels),
        timeout=30,
    )
    TlsMaterial(reply.ca_certificate_pem, reply.certificate_pem, key).save(pki_out)
    return reply.host


def normal_fingerprint(text: str, field: str = "ca_fingerprint") -> str:
    """SHA-256 as 64 hex digits, lower case; colons, spaces and an `sha256:` prefix are accepted."""
    hexed = re.sub(r"[\s:]", "", text.lower().removeprefix("sha256:").removeprefix("sha256="))
    if not _FINGERPRINT.match(hexed):
        raise InvalidArgument(field, f"{text!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return hexed


def fetch_ca(manager: str, ca_fingerprint: str, timeout_s: float = 10.0) -> bytes:
    """The CA certificate in the chain the manager's enrollment listener presents, if its fingerprint
    is `ca_fingerprint`; nothing but a TLS handshake has been sent when this refuses."""
    want = normal_fingerprint(ca_fingerprint)
    for der in _presented_chain(manager, timeout_s):
        if hashlib.sha256(der).hexdigest() == want:
            return ssl.DER_cert_to_PEM_cert(der).encode()
    raise PermissionDenied(f"the manager at {manager} does not present a CA with fingerprint {ca_fingerprint}: "
                           "not enrolling (a wrong --manager, a wrong fingerprint, or someone in between)")


def _presented_chain(manager: str, timeout_s: float) -> list[bytes]:
    """Every certificate the server sent, unverified (we do not trust anything yet)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    target = grpc_target(manager)
    if target.startswith("unix://"):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(timeout_s)
        raw.connect(target.removeprefix("unix://"))
    else:
        host, _, port = target.rpartition(":")
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
    with ctx.wrap_socket(raw, server_hostname=None) as tls:
        chain = getattr(tls, "get_unverified_chain", None) or tls._sslobj.get_unverified_chain  # 3.13: public
        return [ssl.PEM_cert_to_DER_cert(c.public_bytes()) for c in chain()]


def enroll_with_token(manager: str, token: str, ca_fingerprint: str, pki_dir: Path, *,
                      timeout_s: float = 30.0) -> str:
    """Enroll this host: check the manager's CA, make the key here, send the CSR and token, save
    ca.pem, cert.pem and key.pem into `pki_dir`. Returns the host name the manager enrolled."""
    ca_pem = fetch_ca(manager, ca_fingerprint)
    key, csr_pem = make_key_and_csr("virtfleet-host")   # the CA names the host as the manager knows it
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(grpc_target(manager), creds,
                             options=[("grpc.ssl_target_name_override", MANAGER_COMMON_NAME)]) as channel:
        reply = pki_pb2_grpc.EnrollServiceStub(channel).Enroll(
            pki_pb2.EnrollRequest(token=token, csr_pem=csr_pem), timeout=timeout_s)
    TlsMaterial(ca_pem, reply.certificate_pem, key).save(pki_dir)
    return reply.host
