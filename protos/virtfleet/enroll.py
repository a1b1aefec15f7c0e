"""The enrolling side of host enrollment: make a key and CSR, ask the manager to sign it.

Used by `virtfleet host add` and the lab. The private key is written only to the
agent's PKI directory; the manager sees the CSR alone.
"""
from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .tls import TlsMaterial
from .v1 import fleet_pb2, fleet_pb2_grpc


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
    pki_out: Path,
) -> fleet_pb2.Host:
    key, csr_pem = make_key_and_csr(name)
    reply = stub.EnrollHost(
        fleet_pb2.EnrollHostRequest(name=name, address=address, endpoint=endpoint, cluster=cluster, csr_pem=csr_pem),
        timeout=30,
    )
    TlsMaterial(reply.ca_certificate_pem, reply.certificate_pem, key).save(pki_out)
    return reply.host
