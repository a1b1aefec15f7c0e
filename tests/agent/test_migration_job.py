"""Live migration's pure parts (agent.virt.migrationjob), libvirt's copy of the host certificate
(agent.virt.libvirt_pki), the host certificate itself (manager.pki) and the lab libvirtd's migration settings."""
from __future__ import annotations

import stat
from pathlib import Path

import libvirt
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.virt import libvirt_pki
from agent.virt.migrationjob import (MigrationJob, MigrationOrder, first_pass_done, flags, in_postcopy,
                                     job_from_stats, params, parse_meminfo, peer_uri, validate)
from manager.lab import libvirtd
from manager.pki import HOST_UNIT, CertificateAuthority
from virtfleet.enroll import make_key_and_csr
from virtfleet.errors import InvalidArgument
from virtfleet.tls import TlsMaterial

DEST = "qemu+tls://192.0.2.12/system"


def order(**changes) -> MigrationOrder:
    return MigrationOrder(**{"name": "vm1", "dest_uri": DEST, **changes})


def test_every_migration_is_live_peer_to_peer_persistent_there_and_undefined_here():
    base = flags(order())
    assert base == (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
                    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    assert flags(order(auto_converge=True)) == base | libvirt.VIR_MIGRATE_AUTO_CONVERGE
    assert flags(order(post_copy=True)) == base | libvirt.VIR_MIGRATE_POSTCOPY


def test_the_stream_address_and_bandwidth_are_parameters_only_when_given():
    assert params(order()) == {}
    assert params(order(migrate_uri="tcp://198.51.100.7", bandwidth_mib_s=5)) == {
        libvirt.VIR_MIGRATE_PARAM_URI: "tcp://198.51.100.7", libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 5}


def test_the_destination_uri_gets_this_hosts_pki_path():
    assert peer_uri(DEST, "/etc/pki/virtfleet-agent/libvirt") == f"{DEST}?pkipath=/etc/pki/virtfleet-agent/libvirt"
    assert peer_uri(f"{DEST}?no_tty=1", "/p") == f"{DEST}?no_tty=1&pkipath=/p"


@pytest.mark.parametrize("changes, field", [
    ({"name": ""}, "name"),
    ({"dest_uri": "qemu+tcp://192.0.2.12/system"}, "dest_uri"),
    ({"dest_uri": "qemu+tls:///system"}, "dest_uri"),
    ({"dest_uri": "qemu+tls://192.0.2.12/session"}, "dest_uri"),
    ({"dest_uri": f"{DEST}?pkipath=/tmp/x"}, "dest_uri"),
    ({"migrate_uri": "rdma://192.0.2.12"}, "migrate_uri"),
    ({"max_downtime_ms": 60_001}, "max_downtime_ms"),
    ({"bandwidth_mib_s": 1_000_001}, "bandwidth_mib_s"),
    ({"timeout_s": 8 * 86_400}, "timeout_s"),
])
def test_a_bad_order_names_its_field(changes, field):
    with pytest.raises(InvalidArgument) as caught:
        validate(order(**changes))
    assert caught.value.field == field


def test_a_good_order_passes_and_names_its_destination():
    good = validate(order(migrate_uri="tcp://192.0.2.12:49152", max_downtime_ms=300, bandwidth_mib_s=100,
                          timeout_s=600))
    assert good.destination == "192.0.2.12"
    assert order(dest_name="host2").destination == "host2"


RUNNING = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
           "time_elapsed": 857, "data_total": 268967936, "data_processed": 108654, "data_remaining": 267980800,
           "memory_dirty_rate": 12, "memory_bps": 1048770, "downtime": 300, "memory_iteration": 1}


def test_a_running_migration_reads_as_active_with_its_expected_downtime():
    assert job_from_stats(RUNNING) == MigrationJob(
        active=True, time_elapsed_ms=857, data_total=268967936, data_processed=108654, data_remaining=267980800,
        dirty_rate=12, expected_downtime_ms=300, downtime_ms=0, memory_bps=1048770, phase="precopy")
    assert job_from_stats(RUNNING, postcopy=True).phase == "postcopy"


def test_a_completed_job_reads_with_its_real_downtime_and_no_job_as_inactive():
    done = job_from_stats({**RUNNING, "type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "downtime": 72})
    assert not done.active and done.downtime_ms == 72 and done.expected_downtime_ms == 0
    assert job_from_stats({"type": libvirt.VIR_DOMAIN_JOB_NONE}) == MigrationJob()
    save = {**RUNNING, "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_SAVE}
    assert job_from_stats(save) == MigrationJob()   # another kind of job is no migration


def test_post_copy_starts_after_the_first_pass():
    assert not first_pass_done(RUNNING)
    assert first_pass_done({**RUNNING, "memory_iteration": 2})
    assert in_postcopy(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY)
    assert not in_postcopy(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED)


def test_meminfo_in_mib():
    memory = parse_meminfo("MemTotal:       24683520 kB\nMemFree:  100 kB\nMemAvailable:   23517184 kB\n")
    assert (memory.total_mib, memory.available_mib) == (24105, 22966)


# --- the host certificate, for libvirt ------------------------------------------------------------

@pytest.fixture
def host_material(tmp_path) -> TlsMaterial:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    key, csr = make_key_and_csr("ignored")
    return TlsMaterial(ca.bundle_pem, ca.sign_agent_csr(csr, "host1", "192.0.2.11"), key)


def test_a_host_certificate_serves_libvirt_as_server_and_client_and_says_it_is_a_hosts(host_material, tmp_path):
    cert = x509.load_pem_x509_certificate(host_material.cert_pem)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == [HOST_UNIT]
    assert cert.subject.rfc4514_string() == "CN=host1,OU=virtfleet-host,O=virtfleet"
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    _, csr = make_key_and_csr("root")
    admin = x509.load_pem_x509_certificate(ca.sign_admin_csr(csr, "root"))
    assert not admin.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)


def test_libvirts_flat_pki_layout_is_the_agents_key_and_certificate(host_material, tmp_path):
    target = tmp_path / "libvirt"
    assert libvirt_pki.write(target, host_material)
    assert (target / "cacert.pem").read_bytes() == host_material.ca_pem
    for name in ("servercert.pem", "clientcert.pem"):
        assert (target / name).read_bytes() == host_material.cert_pem
    for name in ("serverkey.pem", "clientkey.pem"):
        assert (target / name).read_bytes() == host_material.key_pem
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert not libvirt_pki.write(target, host_material)   # unchanged: nothing rewritten, libvirtd not asked


def test_libvirtd_is_asked_through_its_admin_socket_beside_the_agents_socket():
    assert libvirt_pki.admin_uri("qemu+unix:///system?socket=/lab/h1/sock/libvirt-sock") == \
        "libvirtd:///system?socket=/lab/h1/sock/libvirt-admin-sock"
    assert libvirt_pki.admin_uri("qemu:///system") == "libvirtd:///system"
    assert libvirt_pki.admin_uri("test:///default") is None


def test_a_renewal_rewrites_libvirts_copy(host_material, tmp_path):
    from agent.rpc.certificates import PENDING_KEY, ServerCertificates

    pki = tmp_path / "pki"
    host_material.save(pki)
    certs = ServerCertificates(pki, host_material, libvirt_pki_dir=pki / "libvirt", libvirt_uri="test:///default")
    csr = certs.prepare()
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    renewed = ca.sign_agent_csr(csr, "host1", "192.0.2.11")
    certs.install(renewed, ca.bundle_pem, ca.manager_material().cert_pem)
    assert (pki / "libvirt" / "servercert.pem").read_bytes() == renewed
    assert (pki / "libvirt" / "clientkey.pem").read_bytes() == (pki / "key.pem").read_bytes()
    assert not (pki / PENDING_KEY).exists()


# --- the lab's libvirtd, listening for migrations -----------------------------------------------------

def test_a_lab_libvirtd_listens_with_tls_on_its_address_for_hosts_only(tmp_path):
    tls = libvirtd.LibvirtdTls(address="192.0.2.11", pki_dir=Path("/lab/h1/pki/libvirt"), host_uuid="u-1")
    conf = libvirtd.libvirtd_conf(Path("/lab/s"), tls)
    for line in ("listen_tls = 1", "listen_tcp = 0", 'listen_addr = "192.0.2.11"', 'host_uuid = "u-1"',
                 'tls_allowed_dn_list = ["O=virtfleet,OU=virtfleet-host,CN=*", "CN=*,OU=virtfleet-host,O=virtfleet"]'):
        assert line in conf.splitlines()
    assert "listen_tls" not in libvirtd.libvirtd_conf(Path("/lab/s"))
    qemu = libvirtd.qemu_conf("192.0.2.11").splitlines()
    assert 'migration_host = "192.0.2.11"' in qemu and 'migration_address = "192.0.2.11"' in qemu
    script = libvirtd.launch_command("ns1", libvirtd.LibvirtdPaths(Path("/lab/h1/libvirt")), 0, tls)[-1]
    assert script.endswith(" --listen")
    assert "ln -s /lab/h1/pki/libvirt/serverkey.pem /etc/pki/libvirt/private/serverkey.pem" in script
    assert libvirtd.ensure_placeholder_certificate(tmp_path / "p")
    assert not libvirtd.ensure_placeholder_certificate(tmp_path / "p")
