"""Issue 16's transport: live migration between two lab hosts' libvirtds over TLS, through the agents' RPCs.

One lab of two hosts (each its own libvirtd listening with TLS on its lab address, with
the certificate its agent was enrolled with). The test calls the agents as the manager
does (its client certificate, over mutual TLS) and reads each host itself: its own
libvirtd (`virsh`-equivalent reads over its unix socket) and its own namespace (`ip`).
Diskless TCG VMs migrate in well under a second; the throttled migration that is
watched and cancelled runs the test guest, whose memory is not all zero pages (a
diskless VM's 256 MiB cross in ~1 s even at 1 MiB/s).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import grpc
import pytest

from virtfleet.v1 import vm_pb2

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network and mount namespaces")
libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from manager.lab import libvirtd  # noqa: E402

if not libvirtd.available():
    pytest.skip("libvirtd or qemu-system-x86_64 is not installed", allow_module_level=True)

BRIDGE = "brmig"
MIB = 1024 * 1024
WAIT_S = 120   # a bound for the job to show up, not an assertion on time


class Host:
    def __init__(self, lab_host, agent) -> None:
        self.name, self.netns, self.address = lab_host.name, lab_host.netns, lab_host.address
        self.libvirt_uri = lab_host.libvirt_uri
        self.agent = agent

    @property
    def tls_uri(self) -> str:
        return libvirtd.tls_uri(self.address)

    def links(self) -> set[str]:
        out = subprocess.run(["ip", "-n", self.netns, "-o", "link"], check=True, capture_output=True, text=True).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def domain(self, name: str):
        """The domain as the host's own libvirtd has it, or None."""
        conn = libvirt.open(self.libvirt_uri)
        try:
            return conn.lookupByName(name).XMLDesc(), bool(conn.lookupByName(name).isPersistent())
        except libvirt.libvirtError:
            return None
        finally:
            conn.close()


@pytest.fixture(scope="module")
def hosts():
    from manager.agents import AgentClients
    from manager.lab import lab
    from manager.lab.layout import LabLayout
    from manager.pki import CertificateAuthority

    root = Path(tempfile.mkdtemp(prefix="vft-mig-"))
    root.chmod(0o755)
    layout = LabLayout(root / "lab", prefix=f"vfm{uuid.uuid4().hex[:4]}-")
    clients = None
    try:
        state = lab.up(layout, hosts=2, nics=1, libvirt=True)
        clients = AgentClients(CertificateAuthority.load_or_create(layout.manager_pki).manager_material(),
                               timeout_s=300)
        found = [Host(h, clients.vm_stub(h.name, f"unix://{h.agent_socket}")) for h in state.hosts]
        for h in found:
            subprocess.run(["ip", "-n", h.netns, "link", "add", BRIDGE, "type", "bridge"], check=True)
            subprocess.run(["ip", "-n", h.netns, "link", "set", BRIDGE, "up"], check=True)
        yield found, layout
    finally:
        if clients is not None:
            clients.close()
        lab.down(layout)
        shutil.rmtree(root, ignore_errors=True)


def nic(name: str, mac: str) -> vm_pb2.VNic:
    return vm_pb2.VNic(name=name, kind=vm_pb2.VNIC_KIND_BRIDGE, source=BRIDGE, mac=mac)


def start_vm(host: Host, name: str, *, memory_mib: int = 64, guest: bool = False, nics=()) -> None:
    spec = vm_pb2.VmSpec(name=name, memory_mib=memory_mib, vcpus=1, domain_type="qemu", nics=list(nics),
                         boot=vm_pb2.BootSource(test_guest=guest) if guest else None)
    host.agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))
    host.agent.StartVm(vm_pb2.StartVmRequest(name=name))


def remove_vm(host: Host, name: str) -> None:
    vm = host.agent.GetVm(vm_pb2.GetVmRequest(name=name))
    if vm.state != vm_pb2.VM_STATE_SHUTOFF:
        host.agent.DestroyVm(vm_pb2.DestroyVmRequest(name=name))
    host.agent.UndefineVm(vm_pb2.UndefineVmRequest(name=name))


def migrate(source: Host, dest: Host, name: str, **options) -> vm_pb2.MigrateVmResponse:
    return source.agent.MigrateVm(vm_pb2.MigrateVmRequest(name=name, dest_uri=dest.tls_uri,
                                                          migrate_uri=f"tcp://{dest.address}", dest_name=dest.name,
                                                          **options))


def interfaces(xml: str) -> dict[str, tuple[str, str, str]]:
    """alias → (MAC, PCI address, host device) from a live domain XML."""
    found = {}
    for iface in ET.fromstring(xml).iterfind("devices/interface"):
        addr = iface.find("address[@type='pci']")
        pci = ":".join(addr.get(k, "") for k in ("domain", "bus", "slot", "function"))
        found[iface.find("alias").get("name")] = (iface.find("mac").get("address"), pci,
                                                  iface.find("target").get("dev"))
    return found


def not_found(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()
    return caught.value


def test_a_running_vm_moves_to_the_other_host_with_its_macs_and_pci_addresses(hosts):
    (h1, h2), _ = hosts
    start_vm(h1, "mig1", nics=[nic("nic1", "52:54:00:16:00:01"), nic("nic2", "52:54:00:16:00:02")])
    before, _ = h1.domain("mig1")
    taps_before = {dev for _, _, dev in interfaces(before).values()}
    assert taps_before <= h1.links()

    final = migrate(h1, h2, "mig1").final

    assert not final.active and final.time_elapsed_ms > 0 and final.data_total >= 64 * MIB
    assert final.phase == "precopy"
    assert h1.domain("mig1") is None                     # undefined at the source, not merely stopped
    not_found(lambda: h1.agent.GetVm(vm_pb2.GetVmRequest(name="mig1")))
    after, persistent = h2.domain("mig1")
    assert persistent
    moved = interfaces(after)
    assert {a: (m, p) for a, (m, p, _) in moved.items()} == {a: (m, p) for a, (m, p, _) in interfaces(before).items()}
    taps_after = {dev for _, _, dev in moved.values()}
    assert taps_after <= h2.links()
    assert not taps_before & h1.links()
    # the destination's agent serves a VM it never defined like its own
    vm = h2.agent.GetVm(vm_pb2.GetVmRequest(name="mig1"))
    assert vm.state == vm_pb2.VM_STATE_RUNNING and vm.persistent
    assert [(n.name, n.mac) for n in vm.nics] == [("nic1", "52:54:00:16:00:01"), ("nic2", "52:54:00:16:00:02")]
    assert "mig1" in [v.name for v in h2.agent.ListVms(vm_pb2.ListVmsRequest()).vms]
    plugged = h2.agent.AttachNic(vm_pb2.AttachNicRequest(vm="mig1", nic=nic("nic3", "52:54:00:16:00:03")))
    assert [n.name for n in plugged.nics] == ["nic1", "nic2", "nic3"]
    remove_vm(h2, "mig1")
    assert h2.domain("mig1") is None


def test_a_throttled_migration_shows_its_progress_and_a_cancel_leaves_the_vm_on_the_source(hosts):
    (h1, h2), _ = hosts
    start_vm(h1, "mig2", memory_mib=256, guest=True)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["reply"] = migrate(h1, h2, "mig2", bandwidth_mib_s=1)
        except grpc.RpcError as err:
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    try:
        until = time.monotonic() + WAIT_S
        job = h1.agent.GetMigrationJob(vm_pb2.GetMigrationJobRequest(name="mig2"))
        while not (job.active and job.data_processed > 0) and time.monotonic() < until and thread.is_alive():
            time.sleep(0.05)
            job = h1.agent.GetMigrationJob(vm_pb2.GetMigrationJobRequest(name="mig2"))
        assert job.active and job.phase == "precopy", job
        assert job.data_total >= 256 * MIB and 0 < job.data_processed and job.data_remaining > 0
        # reads are not held up by the running migration, which holds the VM's change slot
        assert h1.agent.GetVm(vm_pb2.GetVmRequest(name="mig2")).state == vm_pb2.VM_STATE_RUNNING

        assert h1.agent.AbortMigrationJob(vm_pb2.AbortMigrationJobRequest(name="mig2")).cancelled
    finally:
        thread.join()
    error = outcome.get("error")
    assert isinstance(error, grpc.RpcError), outcome
    assert error.code() == grpc.StatusCode.ABORTED and "migration of VM 'mig2' was cancelled" in error.details()
    assert h1.agent.GetVm(vm_pb2.GetVmRequest(name="mig2")).state == vm_pb2.VM_STATE_RUNNING
    assert h2.domain("mig2") is None
    assert not h1.agent.GetMigrationJob(vm_pb2.GetMigrationJobRequest(name="mig2")).active
    assert not h1.agent.AbortMigrationJob(vm_pb2.AbortMigrationJobRequest(name="mig2")).cancelled
    remove_vm(h1, "mig2")


def test_a_vm_that_is_not_running_or_a_foreign_destination_is_refused(hosts):
    (h1, h2), _ = hosts
    h1.agent.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(name="mig3", memory_mib=64, vcpus=1,
                                                                domain_type="qemu")))
    try:
        with pytest.raises(grpc.RpcError) as caught:
            migrate(h1, h2, "mig3")
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "'mig3'" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            h1.agent.MigrateVm(vm_pb2.MigrateVmRequest(name="mig3", dest_uri=f"qemu+tcp://{h2.address}/system"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "dest_uri" in caught.value.details()
    finally:
        h1.agent.UndefineVm(vm_pb2.UndefineVmRequest(name="mig3"))


def test_an_unreachable_destination_is_unavailable_and_the_vm_stays(hosts):
    (h1, _), _ = hosts
    start_vm(h1, "mig4")
    try:
        with pytest.raises(grpc.RpcError) as caught:
            h1.agent.MigrateVm(vm_pb2.MigrateVmRequest(name="mig4", dest_uri="qemu+tls://192.0.2.250/system",
                                                       dest_name="nowhere"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
        assert "nowhere" in caught.value.details()
        assert h1.agent.GetVm(vm_pb2.GetVmRequest(name="mig4")).state == vm_pb2.VM_STATE_RUNNING
    finally:
        remove_vm(h1, "mig4")


def _virsh_hostname(netns: str, uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, "virsh", "-c", uri, "hostname"], capture_output=True,
                          text=True, timeout=60)


def test_libvirtd_admits_a_hosts_certificate_and_refuses_an_admins(hosts, tmp_path):
    (h1, h2), layout = hosts
    own = _virsh_hostname(h1.netns, f"{h2.tls_uri}?pkipath={layout.agent_libvirt_pki(h1.name)}")
    assert own.returncode == 0, own.stderr

    admin = tmp_path / "admin-pki"   # the lab admin's certificate, from the same CA, as libvirt's client files
    admin.mkdir()
    shutil.copy(layout.admin_cert_dir / "ca.pem", admin / "cacert.pem")
    shutil.copy(layout.admin_cert_dir / "cert.pem", admin / "clientcert.pem")
    shutil.copy(layout.admin_cert_dir / "key.pem", admin / "clientkey.pem")
    refused = _virsh_hostname(h1.netns, f"{h2.tls_uri}?pkipath={admin}")
    assert refused.returncode != 0
    assert "not on the list of allowed clients" in (Path(layout.host_dir(h2.name)) / "libvirt" / "log"
                                                    / "libvirtd.log").read_text()


def test_host_resources_count_the_running_domains(hosts):
    (h1, _), _ = hosts
    start_vm(h1, "mig5", memory_mib=96)
    try:
        got = h1.agent.GetHostResources(vm_pb2.GetHostResourcesRequest())
        assert 0 < got.memory_available_mib <= got.memory_total_mib
        running = [v for v in h1.agent.ListVms(vm_pb2.ListVmsRequest()).vms if v.state == vm_pb2.VM_STATE_RUNNING]
        assert got.domains_running == len(running) >= 1
        assert got.domains_memory_mib == sum(v.memory_mib for v in running)
    finally:
        remove_vm(h1, "mig5")
