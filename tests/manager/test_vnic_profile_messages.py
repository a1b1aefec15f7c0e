"""What the agent is sent for a vNIC with a profile (pure): each kind takes the settings libvirt gives it."""
from __future__ import annotations

from manager.domain.vnic import DirectMode, Vnic, VnicKind
from manager.domain.vnicprofile import FilterParameter, ProfileSettings, QosLimit, VnicProfile, default_settings
from manager.service.vnic_messages import agent_vnic_on
from manager.store.vnics import NetworkRef

NETWORKS = {"vmnet": NetworkRef(1, True, 10, 9000)}
GOLD = VnicProfile("gold", "Default", "vmnet", ProfileSettings(
    inbound=QosLimit(1000, 2000, 512), outbound=QosLimit(500), filter_name="clean-traffic",
    filter_parameters=(FilterParameter("IP", "10.0.0.5"),), port_mirroring=True, isolated=True, mtu_to_guest=True))


def test_a_bridge_vnic_carries_every_setting_of_its_profile_and_the_network_mtu():
    msg = agent_vnic_on(Vnic("nic1", VnicKind.BRIDGE, network="vmnet", mac="52:54:00:00:00:01", link_down=True),
                        NETWORKS, GOLD)
    assert (msg.bandwidth.inbound.average, msg.bandwidth.inbound.peak, msg.bandwidth.inbound.burst) == (1000, 2000, 512)
    assert (msg.bandwidth.outbound.average, msg.bandwidth.outbound.peak) == (500, 0)
    assert (msg.filter.name, [(p.name, p.value) for p in msg.filter.parameters]) == ("clean-traffic",
                                                                                     [("IP", "10.0.0.5")])
    assert (msg.port_mirroring, msg.isolated, msg.mtu, msg.link_down, msg.vlan) == (True, True, 9000, True, 10)


def test_a_direct_vnic_takes_only_the_qos_so_anti_spoofing_cannot_break_its_start():
    msg = agent_vnic_on(Vnic("nic1", VnicKind.DIRECT, network="vmnet", direct_nic="eth1",
                             direct_mode=DirectMode.BRIDGE), NETWORKS, GOLD)
    assert msg.HasField("bandwidth") and not msg.HasField("filter")
    assert (msg.port_mirroring, msg.isolated, msg.mtu) == (False, False, 0)


def test_a_default_profile_filters_spoofed_macs_on_vm_networks_only_when_anti_spoofing_is_on():
    assert default_settings(vm_network=True, anti_spoofing=True).filter_name == "no-mac-spoofing"
    assert default_settings(vm_network=True, anti_spoofing=False).filter_name is None
    assert default_settings(vm_network=False, anti_spoofing=True).filter_name is None
    plain = agent_vnic_on(Vnic("nic1", VnicKind.BRIDGE, network="vmnet"), NETWORKS,
                          VnicProfile("vmnet", "Default", "vmnet", default_settings(True, True), True))
    assert plain.filter.name == "no-mac-spoofing" and not plain.HasField("bandwidth") and plain.mtu == 0
