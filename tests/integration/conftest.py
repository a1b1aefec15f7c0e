"""A lab with real libvirt + QEMU, shared by the integration tests of one session.

One host with seven NICs (eth0…eth6), its own libvirtd, and its agent serving
VmAgentService over mutual TLS; the tests call the agent with the manager's own
certificate, as the manager does. The lab has its own state directory and
namespace prefix, so it never meets a demo lab on the same machine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LAB_NICS = 7


@dataclass(frozen=True)
class VmLab:
    layout: object           # manager.lab.layout.LabLayout
    host: str                # host name in the manager (host1)
    netns: str               # the host's network namespace
    switch_netns: str
    switch_port_prefix: str  # switch port of ethK is PREFIX + "eK"
    endpoint: str            # the agent's unix:// address
    libvirt_uri: str

    def ip_json(self, *args: str) -> list[dict]:
        return json.loads(sh("ip", "-n", self.netns, "-j", *args) or "[]")

    def virsh(self, *args: str) -> str:
        return sh("virsh", "-c", self.libvirt_uri, *args)

    def live_interfaces(self, vm: str) -> list[ET.Element]:
        return ET.fromstring(self.virsh("dumpxml", vm)).findall("devices/interface")


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _kvm_works() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


KVM_WORKS = _kvm_works()


@pytest.fixture(scope="session")
def vm_lab() -> Iterator[VmLab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root for network and mount namespaces")
    from manager.lab import lab, libvirtd
    from manager.lab.layout import LabLayout

    if not libvirtd.available():
        pytest.skip("libvirtd or qemu-system-x86_64 is not installed (./dev installs them)")
    root = Path(tempfile.mkdtemp(prefix="vft-vmlab-"))
    root.chmod(0o755)
    layout = LabLayout(root / "lab", prefix=f"vfi{uuid.uuid4().hex[:4]}-")
    try:
        state = lab.up(layout, hosts=1, nics=LAB_NICS, libvirt=True)
        h = state.hosts[0]
        yield VmLab(layout=layout, host=h.name, netns=h.netns, switch_netns=state.switch_netns,
                    switch_port_prefix=f"{layout.prefix}h1", endpoint=f"unix://{h.agent_socket}",
                    libvirt_uri=h.libvirt_uri)
    finally:
        lab.down(layout)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def vm_agent(vm_lab: VmLab):
    """The host agent's VmAgentService, called with the manager's certificate over mutual TLS."""
    from manager.agents import AgentClients
    from manager.pki import CertificateAuthority

    clients = AgentClients(CertificateAuthority.load_or_create(vm_lab.layout.manager_pki).manager_material(),
                           timeout_s=120)
    yield clients.vm_stub(vm_lab.host, vm_lab.endpoint)
    clients.close()
