"""What the benchmarks that race virtfleet against bare libvirt share: a throwaway lab, and the baseline's XML.

`lab_host` brings up a lab with one host (or `hosts` of them, each with its own libvirtd),
puts ovirtmgmt on each host's eth0 and yields the manager's channel and the hosts' libvirt
connections; the lab is taken down after, whatever happened. `renamed_definition` is the agent's own definition of a VM under
another name, so the two paths differ only by what virtfleet adds.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import libvirt

from manager.client import open_channel
from manager.lab import lab
from manager.lab.layout import LabLayout
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc

HOST = "host1"


@dataclass(frozen=True)
class LabHost:
    layout: LabLayout
    channel: grpc.Channel    # the manager's fleet API
    conn: libvirt.virConnect  # the (first) host's own libvirtd
    conns: dict[str, libvirt.virConnect]   # every host's, by name


@contextmanager
def lab_host(tag: str, *, hosts: int = 1, guest: bool = False) -> Iterator[LabHost]:
    root = Path(tempfile.mkdtemp(prefix=f"vfb-{tag}-"))
    root.chmod(0o755)
    layout = LabLayout(root / "lab", prefix=f"vfb{uuid.uuid4().hex[:4]}-")
    try:
        print(f"bringing up {hosts} lab host(s), each with its own libvirtd …", flush=True)
        state = lab.up(layout, hosts=hosts, nics=1, libvirt=True, guest=guest)
        with open_channel(f"unix://{layout.manager_socket}") as channel:
            fleet = fleet_pb2_grpc.FleetServiceStub(channel)
            for h in state.hosts:
                fleet.SetupHostManagementNetwork(fleet_pb2.SetupHostManagementNetworkRequest(name=h.name, nic="eth0"),
                                                 timeout=60)
            conns = {h.name: libvirt.open(h.libvirt_uri) for h in state.hosts}
            try:
                yield LabHost(layout, channel, conns[HOST], conns)
            finally:
                for conn in conns.values():
                    conn.close()
    finally:
        lab.down(layout)
        shutil.rmtree(root, ignore_errors=True)


def renamed_definition(conn: libvirt.virConnect, name: str, new_name: str) -> ET.Element:
    """VM `name`'s inactive definition, renamed, without its UUID (libvirt gives the copy its own)."""
    root = ET.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    root.find("name").text = new_name
    uuid_el = root.find("uuid")
    if uuid_el is not None:
        root.remove(uuid_el)
    return root
