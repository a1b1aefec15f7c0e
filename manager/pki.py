"""The manager's certificate authority.

Agent private keys never pass through the manager: the enrolling side makes
the key and a CSR, the CA signs it for the host's name and address. The CA key
stays in the manager's PKI directory (like /etc/pki/ovirt-engine).

Pinning by name: grpc Python cannot show a client the certificate the server
presented, so the manager cannot compare fingerprints after the handshake.
Instead every agent certificate carries, besides the host's name and address,
one DNS name no other certificate has (`pin_name`, from its random serial);
the manager's channel asks TLS for that name (ssl_target_name_override), and
BoringSSL's hostname check then accepts that one certificate and no other the
same CA signed — on every connection and reconnection.

What the CA refuses (`check_public_key`) is one rule for hosts and admins.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from virtfleet.enroll import key_pem, new_key, subject
from virtfleet.errors import InvalidArgument
from virtfleet.tls import MANAGER_COMMON_NAME, TlsMaterial

CA_KEY = "ca-key.pem"
CA_CERT = "ca.pem"
MANAGER_KEY = "manager-key.pem"
MANAGER_CERT = "manager.pem"
MANAGER_SERVER_KEY = "manager-server-key.pem"    # the remote fleet API's TLS server certificate
MANAGER_SERVER_CERT = "manager-server.pem"
AGENT_CERT_DAYS = 5 * 365
CA_DAYS = 10 * 365
PIN_DOMAIN = "pin.virtfleet.invalid"   # .invalid: a name that can never resolve or be anyone else's (RFC 6761)
RSA_MIN_BITS = 2048
RSA_EXPONENT = 65537
EC_CURVES = {"secp256r1", "secp384r1"}


def fingerprint(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def serial_hex(cert_pem: bytes) -> str:
    return format(x509.load_pem_x509_certificate(cert_pem).serial_number, "x")


def pin_name(cert_pem: bytes) -> str:
    """The DNS name only this certificate carries: `c<serial hex>.pin.virtfleet.invalid`.

    Serials are random 159-bit numbers (at most 40 hex digits), so the label stays under DNS's 63.
    """
    return _pin_for_serial(x509.load_pem_x509_certificate(cert_pem).serial_number)


def _pin_for_serial(serial: int) -> str:
    return f"c{serial:x}.{PIN_DOMAIN}"


def check_public_key(key: object, field: str = "csr_pem") -> None:
    """Keys the CA signs: RSA of at least 2048 bits with e = 65537, EC on P-256 or P-384, or Ed25519."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise InvalidArgument(field, f"an RSA key of {key.key_size} bits is too weak (at least {RSA_MIN_BITS})")
        exponent = key.public_numbers().e
        if exponent != RSA_EXPONENT:
            raise InvalidArgument(field, f"an RSA key with public exponent {exponent} is refused "
                                         f"(only {RSA_EXPONENT})")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_CURVES:
            raise InvalidArgument(field, f"an EC key on curve {key.curve.name} is refused (P-256 or P-384 only)")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise InvalidArgument(field, f"a {type(key).__name__} key is refused (RSA, EC P-256/P-384 or Ed25519)")


def load_csr(csr_pem: bytes, field: str = "csr_pem") -> x509.CertificateSigningRequest:
    """A signing request the CA may sign: well formed, self-signed by its key, and the key strong enough."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidArgument(field, f"not a PEM certificate signing request: {exc}") from None
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidArgument(field, f"the request's key cannot be read: {exc}") from None
    if not valid:
        raise InvalidArgument(field, "the request's signature does not match its key")
    check_public_key(key, field)
    return csr


@dataclass
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pki_dir: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, pki_dir: Path) -> "CertificateAuthority":
        pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, cert_path = pki_dir / CA_KEY, pki_dir / CA_CERT
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()), pki_dir)
        key = new_key()
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject("virtfleet CA"))
            .issuer_name(subject("virtfleet CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, pki_dir)

    def _issue(self, public_key, common_name: str, sans: list[x509.GeneralName], usage, *,
               serial: int | None = None) -> bytes:
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject(common_name))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=AGENT_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def sign_agent_csr(self, csr_pem: bytes, host_name: str, address: str) -> bytes:
        """The certificate names the host as the manager knows it, whatever the CSR asked for,
        and carries its own pin name (`pin_name`), the one name the manager will ask for."""
        csr = load_csr(csr_pem)
        serial = x509.random_serial_number()
        sans: list[x509.GeneralName] = [x509.DNSName(host_name), x509.DNSName(_pin_for_serial(serial))]
        if address:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        return self._issue(csr.public_key(), host_name, sans, ExtendedKeyUsageOID.SERVER_AUTH, serial=serial)

    def sign_admin_csr(self, csr_pem: bytes, admin_name: str) -> bytes:
        """A client certificate for the remote fleet API, named for the admin whatever the CSR asked for
        (the same key checks as a host's)."""
        csr = load_csr(csr_pem)
        return self._issue(csr.public_key(), admin_name, [], ExtendedKeyUsageOID.CLIENT_AUTH)

    def manager_server_material(self, names: list[str]) -> TlsMaterial:
        """The server certificate of the remote fleet API and of the enrollment listener: CN and DNS name
        virtfleet-manager (what clients verify, whatever address they used) plus `names` (host names and
        addresses); remade when `names` grow. Its `cert_pem` is the chain (leaf, then the CA), so an
        enrolling host can fetch the CA and check its fingerprint before trusting it."""
        key_path, cert_path = self.pki_dir / MANAGER_SERVER_KEY, self.pki_dir / MANAGER_SERVER_CERT
        sans: list[x509.GeneralName] = [x509.DNSName(MANAGER_COMMON_NAME)]
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        if cert_path.exists() and key_path.exists():
            have = x509.load_pem_x509_certificate(cert_path.read_bytes())
            try:
                covered = set(have.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
            except x509.ExtensionNotFound:
                covered = set()
            if set(sans) <= covered:
                return TlsMaterial(self.cert_pem, cert_path.read_bytes() + self.cert_pem, key_path.read_bytes())
        key = new_key()
        cert = self._issue(key.public_key(), MANAGER_COMMON_NAME, list(dict.fromkeys(sans)),
                           ExtendedKeyUsageOID.SERVER_AUTH)
        _write_private(key_path, key_pem(key))
        cert_path.write_bytes(cert)
        return TlsMaterial(self.cert_pem, cert + self.cert_pem, key_pem(key))

    def manager_material(self) -> TlsMaterial:
        """The manager's client certificate for calling agents; made once, kept on disk."""
        key_path, cert_path = self.pki_dir / MANAGER_KEY, self.pki_dir / MANAGER_CERT
        if not (key_path.exists() and cert_path.exists()):
            key = new_key()
            cert = self._issue(key.public_key(), MANAGER_COMMON_NAME, [], ExtendedKeyUsageOID.CLIENT_AUTH)
            _write_private(key_path, key_pem(key))
            cert_path.write_bytes(cert)
        return TlsMaterial(self.cert_pem, cert_path.read_bytes(), key_path.read_bytes())


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)
