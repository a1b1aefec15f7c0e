"""One table of values, judged by the manager's door and by the agent's validators alike.

The manager must refuse exactly what a host would refuse (else a change is
accepted, recorded, and then fails on the host: VDSM's "out of sync"), so each
row runs through both ends' real validators and both must agree.
"""
from __future__ import annotations

import pytest

from agent.net.hostnet.validation import validate as agent_validate_networks
from agent.virt.spec import NicKind, VmSpec, VNicSpec
from agent.virt.validation import validate_vm as agent_validate_vm
from manager.api.vnics import vnics_from_messages
from manager.domain.netinput import host_attachment, network_definition
from manager.domain.vnic import check_vnics
from virtfleet import rules
from virtfleet.errors import InvalidArgument
from virtfleet.v1 import fleet_pb2, hostnet_pb2, netstate_pb2, vms_pb2

OK, BAD = True, False

# (what, value, accepted)
VM_NAMES = [("vm1", OK), ("a" * 63, OK), ("a" * 64, BAD), ("", BAD), ("_x", BAD), ("a+b", BAD), ("web.1", OK),
            ("a b", BAD), ("ä", BAD)]
VNIC_NAMES = [("nic1", OK), ("a" * 32, OK), ("a" * 33, BAD), ("-x", BAD), ("n.1", BAD), ("", BAD)]
MACS = [("52:54:00:00:00:01", OK), ("52-54-00-00-00-01", OK), ("525400000001", OK), ("01:00:5e:00:00:01", BAD),
        ("52:54:00:00:00", BAD), ("zz", BAD)]
MODELS = [("virtio", OK), ("e1000", OK), ("bogus", BAD), ("VIRTIO", BAD)]
DEVICES = [("eth0", OK), ("a" * 15, OK), ("a" * 16, BAD), ("a b", BAD), ("a/b", BAD), ("a:b", BAD), (".", BAD)]
VLANS = [(0, OK), (1, OK), (4094, OK), (4095, BAD)]
MTUS = [(0, OK), (68, OK), (67, BAD), (9000, OK), (65535, OK), (65536, BAD)]
IPV4 = [  # (method, address, prefixlen, gateway, default_route), accepted
    (("static", "192.0.2.10", 24, "192.0.2.1", True), OK),
    (("static", "192.0.2.10", 24, "198.51.100.1", False), BAD),   # gateway outside the subnet
    (("static", "192.0.2.10", 33, "", False), BAD),
    (("static", "192.0.2.300", 24, "", False), BAD),
    (("dhcp", "192.0.2.10", 24, "", False), BAD),                 # an address needs static
    (("dhcp", "", 0, "", True), BAD),                             # a default route needs a gateway
    (("dhcp", "", 0, "", False), OK),
    (("none", "", 0, "", False), OK),
    (("bogus", "", 0, "", False), BAD),
    (("STATIC", "192.0.2.10", 24, "", False), BAD),
]


def accepted(check) -> bool:
    try:
        check()
    except InvalidArgument:
        return False
    return True


def both(manager_check, agent_check) -> tuple[bool, bool]:
    return accepted(manager_check), accepted(agent_check)


# -- the two ends' doors ------------------------------------------------------------------------


def manager_vnic(**fields) -> list:
    return check_vnics(vnics_from_messages([vms_pb2.Nic(**fields)]))


def agent_vm(name: str = "vm1", nic_name: str = "nic1", **nic) -> None:
    nics = (VNicSpec(**{"name": nic_name, "kind": NicKind.BRIDGE, "source": "br0", **nic}),)
    agent_validate_vm(VmSpec(name=name, memory_mib=64, vcpus=1, nics=nics))


def _host_state(nic: str) -> netstate_pb2.NetworkState:
    return netstate_pb2.NetworkState(links=[netstate_pb2.Link(name=nic, index=2, link_type="ether", kind="")])


def agent_networks(att: hostnet_pb2.NetworkAttachment) -> None:
    request = hostnet_pb2.SetupNetworksRequest(networks=[att])
    agent_validate_networks(request, hostnet_pb2.HostNetworkConfig(), _host_state(att.nic), ["bridge", "vlan", "bond"])


def manager_network(name: str = "net1", vlan: int = 0, mtu: int = 0):
    return network_definition(name, vlan, mtu)


def manager_attachment(nic: str = "eth0", ipv4: hostnet_pb2.Ipv4Config | None = None, default_route: bool = False):
    return host_attachment(fleet_pb2.HostAttachment(network="net1", nic=nic, ipv4=ipv4, default_route=default_route),
                           "attach[0]")


# -- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, ok", VM_NAMES)
def test_vm_names(name, ok):
    # the manager's door for VM, template and snapshot names (their services' create) is rules.vm_name
    assert both(lambda: rules.vm_name(name, "name", "template"), lambda: agent_vm(name=name)) == (ok, ok)


@pytest.mark.parametrize("name, ok", VNIC_NAMES)
def test_vnic_names(name, ok):
    assert both(lambda: manager_vnic(name=name, network="br0"), lambda: agent_vm(nic_name=name)) == (ok, ok)


@pytest.mark.parametrize("mac, ok", MACS)
def test_vnic_macs(mac, ok):
    assert both(lambda: manager_vnic(name="nic1", network="br0", mac=mac), lambda: agent_vm(mac=mac)) == (ok, ok)


@pytest.mark.parametrize("model, ok", MODELS)
def test_vnic_models(model, ok):
    assert both(lambda: manager_vnic(name="nic1", network="br0", model=model), lambda: agent_vm(model=model)) == (ok, ok)


@pytest.mark.parametrize("device, ok", DEVICES)
def test_device_names(device, ok):
    assert both(lambda: manager_vnic(name="nic1", direct_nic=device),
                lambda: agent_vm(kind=NicKind.DIRECT, source=device)) == (ok, ok)
    assert both(lambda: manager_network(name=device),
                lambda: agent_networks(hostnet_pb2.NetworkAttachment(network=device, nic="uplink0", bridged=True))) == (ok, ok)
    assert both(lambda: manager_attachment(nic=device),
                lambda: agent_networks(hostnet_pb2.NetworkAttachment(network="net1", nic=device, bridged=True))) == (ok, ok)


@pytest.mark.parametrize("vlan, ok", VLANS)
def test_vlan_ids(vlan, ok):
    assert both(lambda: manager_network(vlan=vlan),
                lambda: agent_networks(hostnet_pb2.NetworkAttachment(network="net1", nic="eth0", vlan=vlan,
                                                                     bridged=True))) == (ok, ok)


@pytest.mark.parametrize("mtu, ok", MTUS)
def test_mtus(mtu, ok):
    assert both(lambda: manager_network(mtu=mtu),
                lambda: agent_networks(hostnet_pb2.NetworkAttachment(network="net1", nic="eth0", mtu=mtu,
                                                                     bridged=True))) == (ok, ok)


@pytest.mark.parametrize("values, ok", IPV4)
def test_ipv4_settings(values, ok):
    method, address, prefixlen, gateway, default_route = values
    ipv4 = hostnet_pb2.Ipv4Config(method=method, address=address, prefixlen=prefixlen, gateway=gateway)
    assert both(lambda: manager_attachment(ipv4=ipv4, default_route=default_route),
                lambda: agent_networks(hostnet_pb2.NetworkAttachment(network="net1", nic="eth0", bridged=True,
                                                                     ipv4=ipv4, default_route=default_route))) == (ok, ok)
