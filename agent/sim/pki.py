"""One server certificate naming every simulated host, signed by the manager's CA.

The manager checks that an agent's certificate names the host it called
(target name override); a single listener serving a thousand hosts therefore
presents one certificate with a thousand DNS names, which TLS allows.
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from virtfleet.tls import TlsMaterial


def fleet_material(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: list[str]) -> TlsMaterial:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "virtfleet fleet simulator")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return TlsMaterial(ca_cert.public_bytes(serialization.Encoding.PEM),
                       cert.public_bytes(serialization.Encoding.PEM), key_pem)
