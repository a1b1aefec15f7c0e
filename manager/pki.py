"""The manager's certificate authority: its CAs, the certificates it issues, the manager's own.

Agent private keys never pass through the manager: the enrolling side makes
the key and a CSR, the CA signs it for the host's name and address. The CA keys
stay in the manager's PKI directory (like /etc/pki/ovirt-engine).

Several CAs during a rollover. The PKI directory holds each CA as `NAME.pem` and
`NAME-key.pem` (the first one is `ca`) and `ca-state.json`, which says which CA is
active (signs everything) and which are retiring (still trusted, sign nothing),
and the trust generation (it grows each time the set of trusted CAs changes, so
the manager knows which hosts still need the new bundle). The state lives beside
the keys, not in the database: the CA must load without a database (offline
`host add --pki-out`, tests), and a backup of the directory is then consistent
with itself. A new CA's files are written before the state file names it, and the
state file is replaced whole, so a crash leaves the old state or the new one.

Lifetimes are settings (ManagerConfig); a certificate never outlives the CA that
signs it.

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
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from virtfleet.enroll import key_pem, new_key, subject
from virtfleet.errors import FailedPrecondition, InvalidArgument
from virtfleet.tls import MANAGER_COMMON_NAME, TlsMaterial

FIRST_CA = "ca"
CA_KEY = "ca-key.pem"
CA_CERT = "ca.pem"
CA_STATE = "ca-state.json"
MANAGER_KEY = "manager-key.pem"
MANAGER_CERT = "manager.pem"
MANAGER_SERVER_KEY = "manager-server-key.pem"    # the remote fleet API's TLS server certificate
MANAGER_SERVER_CERT = "manager-server.pem"
YEAR_S = 365 * 86400.0
HOST_UNIT = "virtfleet-host"   # the OU of every host certificate: libvirtd admits only these (tls_allowed_dn_list)
PIN_DOMAIN = "pin.virtfleet.invalid"   # .invalid: a name that can never resolve or be anyone else's (RFC 6761)
RSA_MIN_BITS = 2048
RSA_EXPONENT = 65537
EC_CURVES = {"secp256r1", "secp384r1"}
BACKDATE_MAX_S = 300.0  # certificates start a little in the past: clocks of hosts differ


@dataclass(frozen=True)
class Lifetimes:
    """Seconds each kind of certificate is valid (ManagerConfig: agent/manager_cert_lifetime_s, ca_lifetime_s)."""

    agent_s: float = YEAR_S
    manager_s: float = YEAR_S
    ca_s: float = 10 * YEAR_S


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


def _backdate(lifetime_s: float) -> dt.timedelta:
    """Five minutes for real lifetimes; a twentieth of a test's few seconds, so two thirds still mean something."""
    return dt.timedelta(seconds=min(BACKDATE_MAX_S, lifetime_s / 20))


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


@dataclass(frozen=True)
class CaKey:
    """One CA of the PKI directory."""

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def issued(self, cert: x509.Certificate) -> bool:
        if cert.issuer != self.cert.subject:
            return False
        try:
            cert.verify_directly_issued_by(self.cert)
        except (InvalidSignature, ValueError, TypeError):  # same subject, another key: not this CA
            return False
        return True


@dataclass
class CertificateAuthority:
    pki_dir: Path
    active: CaKey
    retiring: list[CaKey] = field(default_factory=list)
    generation: int = 0
    lifetimes: Lifetimes = Lifetimes()
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return self.active.key

    @property
    def cert(self) -> x509.Certificate:
        return self.active.cert

    @property
    def cert_pem(self) -> bytes:
        """The active CA's certificate (the one that signs)."""
        return self.active.cert_pem

    @property
    def bundle_pem(self) -> bytes:
        """Every CA trusted now: the active one, then those retiring."""
        with self._lock:
            return b"".join(ca.cert_pem for ca in [self.active, *self.retiring])

    def cas(self) -> list[tuple[CaKey, str]]:
        with self._lock:
            return [(self.active, "active"), *((ca, "retiring") for ca in self.retiring)]

    def issuer_of(self, cert_pem: bytes) -> CaKey | None:
        cert = x509.load_pem_x509_certificate(cert_pem)
        for ca, _ in self.cas():
            if ca.issued(cert):
                return ca
        return None

    # -- loading and rollover ----------------------------------------------------------

    @classmethod
    def load_or_create(cls, pki_dir: Path, lifetimes: Lifetimes = Lifetimes()) -> "CertificateAuthority":
        pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state_path = pki_dir / CA_STATE
        if state_path.exists():
            state = json.loads(state_path.read_text())
            return cls(pki_dir, _load_ca(pki_dir, state["active"]),
                       [_load_ca(pki_dir, name) for name in state["retiring"]], int(state["generation"]), lifetimes)
        if (pki_dir / CA_KEY).exists() and (pki_dir / CA_CERT).exists():
            return cls(pki_dir, _load_ca(pki_dir, FIRST_CA), [], 0, lifetimes)
        return cls(pki_dir, _create_ca(pki_dir, FIRST_CA, lifetimes.ca_s), [], 0, lifetimes)

    def rotate(self) -> CaKey:
        """A new active CA; the old one is retiring (still trusted) until `retire`."""
        with self._lock:
            if self.retiring:
                raise FailedPrecondition(
                    f"a CA rollover is already in progress (CA {self.retiring[0].fingerprint[:23]}… is retiring); "
                    "it ends when every host holds a certificate from the new CA (see `virtfleet pki status`)")
            taken = {p.name.removesuffix("-key.pem").removesuffix(".pem") for p in self.pki_dir.glob("ca*.pem")}
            number = 2
            while f"ca-{number}" in taken:
                number += 1
            new = _create_ca(self.pki_dir, f"ca-{number}", self.lifetimes.ca_s)
            self._save_state(new, [self.active], self.generation + 1)
            return new

    def retire(self) -> list[CaKey]:
        """Stop trusting the retiring CAs (every certificate in use is from the active one); their keys go."""
        with self._lock:
            gone = self.retiring
            if not gone:
                return []
            self._save_state(self.active, [], self.generation + 1)
            for ca in gone:
                _key_path(self.pki_dir, ca.name).unlink(missing_ok=True)
            return gone

    def _save_state(self, active: CaKey, retiring: list[CaKey], generation: int) -> None:
        state = {"active": active.name, "retiring": [ca.name for ca in retiring], "generation": generation}
        _write_file(self.pki_dir / CA_STATE, json.dumps(state, indent=2).encode() + b"\n", 0o600)
        self.active, self.retiring, self.generation = active, retiring, generation

    # -- issuing -----------------------------------------------------------------------

    def _issue(self, public_key, common_name: str, sans: list[x509.GeneralName], usage,
               lifetime_s: float | None = None, serial: int | None = None, unit: str = "") -> bytes:
        """`usage`: one extended key usage or a list of them; `unit`: an OU in the subject (hosts' HOST_UNIT)."""
        lifetime_s = self.lifetimes.agent_s if lifetime_s is None else lifetime_s
        with self._lock:
            ca = self.active
        now = dt.datetime.now(dt.timezone.utc)
        not_after = min(now + dt.timedelta(seconds=lifetime_s), ca.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_subject(common_name, unit))
            .issuer_name(ca.cert.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - _backdate(lifetime_s))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage if isinstance(usage, list) else [usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def sign_agent_csr(self, csr_pem: bytes, host_name: str, address: str) -> bytes:
        """The certificate names the host as the manager knows it, whatever the CSR asked for,
        and carries its own pin name (`pin_name`), the one name the manager will ask for.

        It serves the host's libvirtd too, for live migration (libvirt's `pki` layout: the same key and
        certificate as its TLS server and as the client a peer-to-peer migration connects with), so it is
        for server and client authentication both; its subject's OU (HOST_UNIT) tells it from an admin's or
        the manager's certificate of the same CA, and is what each libvirtd's tls_allowed_dn_list admits."""
        csr = load_csr(csr_pem)
        serial = x509.random_serial_number()
        sans: list[x509.GeneralName] = [x509.DNSName(host_name), x509.DNSName(_pin_for_serial(serial))]
        if address:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        return self._issue(csr.public_key(), host_name, sans,
                           [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                           self.lifetimes.agent_s, serial, unit=HOST_UNIT)

    def sign_admin_csr(self, csr_pem: bytes, admin_name: str) -> bytes:
        """A client certificate for the remote fleet API, named for the admin whatever the CSR asked for
        (the same key checks as a host's)."""
        csr = load_csr(csr_pem)
        return self._issue(csr.public_key(), admin_name, [], ExtendedKeyUsageOID.CLIENT_AUTH)

    def manager_server_material(self, names: list[str]) -> TlsMaterial:
        """The server certificate of the remote fleet API and of the enrollment listener: CN and DNS name
        virtfleet-manager (what clients verify, whatever address they used) plus `names` (host names and
        addresses); remade when `names` grow or its CA is no longer the active one. Its `cert_pem` is the
        chain (leaf, then the CA), so an enrolling host can fetch the CA and check its fingerprint before
        trusting it; its `ca_pem`, the clients it accepts, is every CA trusted now."""
        with self._lock:
            key_path, cert_path = self.pki_dir / MANAGER_SERVER_KEY, self.pki_dir / MANAGER_SERVER_CERT
            sans: list[x509.GeneralName] = [x509.DNSName(MANAGER_COMMON_NAME)]
            for name in names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    sans.append(x509.DNSName(name))
            if cert_path.exists() and key_path.exists():
                have_pem = cert_path.read_bytes()
                have = x509.load_pem_x509_certificate(have_pem)
                try:
                    covered = set(have.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
                except x509.ExtensionNotFound:
                    covered = set()
                if set(sans) <= covered and self.active.issued(have):
                    return TlsMaterial(self.bundle_pem, have_pem + self.cert_pem, key_path.read_bytes())
            key = new_key()
            cert = self._issue(key.public_key(), MANAGER_COMMON_NAME, list(dict.fromkeys(sans)),
                               ExtendedKeyUsageOID.SERVER_AUTH, self.lifetimes.manager_s)
            _write_file(key_path, key_pem(key), 0o600)
            _write_file(cert_path, cert, 0o644)
            return TlsMaterial(self.bundle_pem, cert + self.cert_pem, key_pem(key))

    # -- the manager's own client certificate --------------------------------------------

    def manager_material(self) -> TlsMaterial:
        """The manager's client certificate for calling agents (made once, kept on disk) and the CAs it trusts.

        A key that does not match the certificate (a crash between writing the two in
        `rotate_manager_material`) gets a certificate issued for it here.
        """
        with self._lock:
            key_path, cert_path = self.pki_dir / MANAGER_KEY, self.pki_dir / MANAGER_CERT
            if not key_path.exists():
                return self.rotate_manager_material()
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not cert_path.exists() or not _matches(key, cert_path.read_bytes()):
                _write_file(cert_path, self._manager_cert(key), 0o644)
            return TlsMaterial(self.bundle_pem, cert_path.read_bytes(), key_path.read_bytes())

    def rotate_manager_material(self) -> TlsMaterial:
        """A new key and certificate from the active CA, each file replaced whole (key first)."""
        with self._lock:
            key = new_key()
            cert = self._manager_cert(key)
            _write_file(self.pki_dir / MANAGER_KEY, key_pem(key), 0o600)
            _write_file(self.pki_dir / MANAGER_CERT, cert, 0o644)
            return TlsMaterial(self.bundle_pem, cert, key_pem(key))

    def _manager_cert(self, key) -> bytes:
        return self._issue(key.public_key(), MANAGER_COMMON_NAME, [], ExtendedKeyUsageOID.CLIENT_AUTH,
                           self.lifetimes.manager_s)


def _subject(common_name: str, unit: str) -> x509.Name:
    """virtfleet.enroll.subject, with an OU before the CN when `unit` is given (O=virtfleet, OU=…, CN=…)."""
    name = subject(common_name)
    if not unit:
        return name
    attrs = list(name)
    return x509.Name([*attrs[:-1], x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, unit), attrs[-1]])


def _matches(key, cert_pem: bytes) -> bool:
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    cert_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    return (cert_key.public_bytes(serialization.Encoding.DER, pub)
            == key.public_key().public_bytes(serialization.Encoding.DER, pub))


def _key_path(pki_dir: Path, name: str) -> Path:
    return pki_dir / f"{name}-key.pem"


def _load_ca(pki_dir: Path, name: str) -> CaKey:
    key = serialization.load_pem_private_key(_key_path(pki_dir, name).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return CaKey(name, key, x509.load_pem_x509_certificate((pki_dir / f"{name}.pem").read_bytes()))


def _create_ca(pki_dir: Path, name: str, lifetime_s: float) -> CaKey:
    """The first CA keeps its historical subject; later ones add their name, so each CA's subject is unique."""
    key = new_key()
    now = dt.datetime.now(dt.timezone.utc)
    name_of_ca = subject("virtfleet CA" if name == FIRST_CA else f"virtfleet CA {name}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name_of_ca)
        .issuer_name(name_of_ca)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _backdate(lifetime_s))
        .not_valid_after(now + dt.timedelta(seconds=lifetime_s))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    _write_file(_key_path(pki_dir, name), key_pem(key), 0o600)
    _write_file(pki_dir / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CaKey(name, key, cert)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Replaced whole: a crash leaves the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
