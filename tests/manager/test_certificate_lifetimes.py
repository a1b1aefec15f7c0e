"""Lifetimes, the renewal decision, CA rollover on disk, and the recoveries from a save cut short."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from agent.rpc.certificates import PENDING_KEY, load_material
from manager.pki import CA_STATE, MANAGER_CERT, MANAGER_KEY, CertificateAuthority, Lifetimes, pin_name
from manager.service.certificates import check_interval_s, due_for_renewal, renew_at
from virtfleet.enroll import key_pem, make_key_and_csr, new_key
from virtfleet.errors import FailedPrecondition
from virtfleet.tls import TlsMaterial

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_a_certificate_is_due_once_two_thirds_of_its_lifetime_passed():
    end = T0 + dt.timedelta(days=300)
    assert renew_at(T0, end) == T0 + dt.timedelta(days=200)
    assert not due_for_renewal(T0, end, T0 + dt.timedelta(days=199, hours=23))
    assert due_for_renewal(T0, end, T0 + dt.timedelta(days=200))
    assert due_for_renewal(T0, end, end + dt.timedelta(days=1))  # expired: due all the more


def test_the_check_runs_at_a_tenth_of_the_shortest_lifetime_and_at_least_every_minute():
    assert check_interval_s(Lifetimes()) == 60.0
    assert check_interval_s(Lifetimes(agent_s=6.0)) == pytest.approx(0.6)
    assert check_interval_s(Lifetimes(manager_s=30.0)) == pytest.approx(3.0)


def test_issued_certificates_follow_the_configured_lifetimes_and_carry_their_pin(tmp_path: Path):
    ca = CertificateAuthority.load_or_create(tmp_path, Lifetimes(agent_s=3600, manager_s=7200, ca_s=86400))
    _, csr = make_key_and_csr("host1")
    agent_pem = ca.sign_agent_csr(csr, "host1", "192.0.2.11")
    agent = _cert(agent_pem)
    manager = _cert(ca.manager_material().cert_pem)
    assert agent.not_valid_after_utc - agent.not_valid_before_utc == dt.timedelta(seconds=3600 + 180)
    assert manager.not_valid_after_utc - manager.not_valid_before_utc == dt.timedelta(seconds=7200 + 300)
    names = agent.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == ["host1", f"c{agent.serial_number:x}.pin.virtfleet.invalid"] == ["host1", pin_name(agent_pem)]


def test_a_certificate_never_outlives_its_ca(tmp_path: Path):
    ca = CertificateAuthority.load_or_create(tmp_path, Lifetimes(agent_s=10 * 86400, ca_s=86400))
    _, csr = make_key_and_csr("host1")
    assert _cert(ca.sign_agent_csr(csr, "host1", "")).not_valid_after_utc == ca.cert.not_valid_after_utc


def test_rollover_trusts_both_cas_then_only_the_new_one_and_survives_a_reload(tmp_path: Path):
    ca = CertificateAuthority.load_or_create(tmp_path)
    old = ca.active
    _, csr = make_key_and_csr("host1")
    before = ca.sign_agent_csr(csr, "host1", "")
    new = ca.rotate()
    assert [state for _, state in ca.cas()] == ["active", "retiring"]
    assert ca.bundle_pem == new.cert_pem + old.cert_pem and new.cert.subject != old.cert.subject
    after = ca.sign_agent_csr(csr, "host1", "")
    assert ca.issuer_of(before).name == old.name and ca.issuer_of(after).name == new.name
    with pytest.raises(FailedPrecondition):
        ca.rotate()
    reloaded = CertificateAuthority.load_or_create(tmp_path)
    assert (reloaded.active.name, [c.name for c in reloaded.retiring], reloaded.generation) == (new.name, [old.name], 1)
    assert reloaded.retire()[0].name == old.name
    assert not (tmp_path / f"{old.name}-key.pem").exists()
    again = CertificateAuthority.load_or_create(tmp_path)
    assert (again.bundle_pem, again.generation, again.issuer_of(before)) == (new.cert_pem, 2, None)
    assert (tmp_path / CA_STATE).stat().st_mode & 0o777 == 0o600


def test_a_manager_key_without_its_certificate_gets_one_at_load(tmp_path: Path):
    """A crash between writing the new key and its certificate: the key is kept, a certificate issued for it."""
    ca = CertificateAuthority.load_or_create(tmp_path)
    first = ca.manager_material()
    (tmp_path / MANAGER_KEY).write_bytes(key_pem(new_key()))
    healed = ca.manager_material()
    assert healed.key_pem == (tmp_path / MANAGER_KEY).read_bytes() and healed.cert_pem != first.cert_pem
    assert healed.cert_pem == (tmp_path / MANAGER_CERT).read_bytes()


def test_an_agent_save_cut_between_certificate_and_key_is_finished_with_the_pending_key(tmp_path: Path):
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    old_key, csr = make_key_and_csr("host1")
    TlsMaterial(ca.cert_pem, ca.sign_agent_csr(csr, "host1", ""), old_key).save(tmp_path / "agent")
    new_key_pem, new_csr = make_key_and_csr("host1")
    (tmp_path / "agent" / PENDING_KEY).write_bytes(new_key_pem)
    new_cert = ca.sign_agent_csr(new_csr, "host1", "")
    (tmp_path / "agent" / "cert.pem").write_bytes(new_cert)  # killed here: key.pem is still the old key
    material = load_material(tmp_path / "agent")
    assert (material.cert_pem, material.key_pem) == (new_cert, new_key_pem)
    assert (tmp_path / "agent" / "key.pem").read_bytes() == new_key_pem
    assert not (tmp_path / "agent" / PENDING_KEY).exists()
