"""What the CA refuses to sign: weak keys, the manager's or an admin's name, addresses that are not unicast.

Through EnrollHost on a real manager: refused with the field named, and nothing written.
"""
from __future__ import annotations

import grpc
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from manager.pki import check_public_key, pin_name
from virtfleet.enroll import make_key_and_csr, subject
from virtfleet.errors import InvalidArgument
from virtfleet.rpc import field_violations
from virtfleet.v1 import fleet_pb2


def _csr(key, hash_=hashes.SHA256()) -> bytes:
    return x509.CertificateSigningRequestBuilder().subject_name(subject("h")).sign(key, hash_).public_bytes(
        serialization.Encoding.PEM)


def _refused(manager, field: str, **request) -> str:
    request = {"name": "host1", "address": "192.0.2.11", **request}
    with pytest.raises(grpc.RpcError) as err:
        manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(**request))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert [f for f, _ in field_violations(err.value)] == [field]
    assert not manager.fleet.ListHosts(fleet_pb2.ListHostsRequest()).hosts
    return err.value.details()


WEAK_KEYS = {
    "rsa-1024": lambda: rsa.generate_private_key(65537, 1024),
    "rsa-e3": lambda: rsa.generate_private_key(3, 2048),
    "ec-p192": lambda: ec.generate_private_key(ec.SECP192R1()),
    "ec-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
}


@pytest.mark.parametrize("kind", sorted(WEAK_KEYS))
def test_a_weak_key_is_refused_and_nothing_is_written(manager, kind):
    try:
        key = WEAK_KEYS[kind]()
        csr = _csr(key)
    except Exception as exc:  # noqa: BLE001 - this OpenSSL build cannot make the key at all
        pytest.skip(f"cryptography cannot make a {kind} key here: {exc}")
    details = _refused(manager, "csr_pem", csr_pem=csr)
    assert "refused" in details or "too weak" in details


@pytest.mark.parametrize("make", [lambda: rsa.generate_private_key(65537, 2048),
                                  lambda: ec.generate_private_key(ec.SECP384R1()),
                                  lambda: ed25519.Ed25519PrivateKey.generate()])
def test_strong_keys_are_signed_and_each_certificate_has_its_own_pin(manager, make):
    key = make()
    csr = _csr(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    reply = manager.fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name="host1", address="192.0.2.11", csr_pem=csr))
    cert = x509.load_pem_x509_certificate(reply.certificate_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == ["host1", pin_name(reply.certificate_pem)]
    assert len(pin_name(reply.certificate_pem).split(".")[0]) <= 63


def test_check_public_key_names_the_field():
    with pytest.raises(InvalidArgument) as err:
        check_public_key(rsa.generate_private_key(65537, 1024).public_key(), "admin.csr_pem")
    assert err.value.field == "admin.csr_pem"


def test_the_managers_name_is_not_a_host_name(manager):
    _, csr = make_key_and_csr("virtfleet-manager")
    assert "manager" in _refused(manager, "name", name="virtfleet-manager", csr_pem=csr)
    assert "manager" in _refused(manager, "name", name="virtfleet-manager")   # token path too


def test_an_admins_name_is_not_a_host_name(manager):
    with psycopg.connect(manager.app.pool.conninfo, autocommit=True) as conn:   # db/008's table
        conn.execute("""INSERT INTO admins (name, role, cert_fingerprint, cert_serial, created_by)
                        VALUES ('alice', 'operator', 'AA:BB', '1', 'test')""")
    assert "admin" in _refused(manager, "name", name="alice")


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1"])
def test_an_address_that_is_not_unicast_is_refused(manager, address):
    _, csr = make_key_and_csr("host1")
    assert address in _refused(manager, "address", address=address, csr_pem=csr)
    _refused(manager, "address", address=address)


def test_a_malformed_csr_is_refused(manager):
    assert "PEM" in _refused(manager, "csr_pem", csr_pem=b"-----BEGIN CERTIFICATE REQUEST-----\nxx\n")
