"""vNIC profiles through the real manager and PostgreSQL: CRUD, every bad input, defaults, vNICs naming them."""
from __future__ import annotations

import grpc
import pytest

from manager.cli.profiles import parse_filter, parse_qos, qos_text
from tests.fixtures.manager import running_manager
from virtfleet.v1 import fleet_pb2, profiles_pb2, profiles_pb2_grpc, vm_pb2, vms_pb2

from .vmhelpers import api, create_template, create_vm

Limit = vm_pb2.BandwidthLimit


def profiles(manager) -> profiles_pb2_grpc.ProfileServiceStub:
    return profiles_pb2_grpc.ProfileServiceStub(manager.channel)


def network(manager, name: str, **kw) -> None:
    manager.fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name=name), **kw))


def create(manager, name: str, net: str, **kw) -> profiles_pb2.VnicProfile:
    return profiles(manager).CreateVnicProfile(profiles_pb2.CreateVnicProfileRequest(
        profile=profiles_pb2.VnicProfile(name=name, network=net, **kw)))


def get(manager, name: str) -> profiles_pb2.VnicProfile:
    return profiles(manager).GetVnicProfile(profiles_pb2.GetVnicProfileRequest(name=name))


def listing(manager) -> list[tuple]:
    return [(p.name, p.network, p.generation) for p in
            profiles(manager).ListVnicProfiles(profiles_pb2.ListVnicProfilesRequest()).profiles]


def refused(call, *args) -> grpc.RpcError:
    return pytest.raises(grpc.RpcError, call, *args).value


# -- defaults -------------------------------------------------------------------------------------


def test_every_network_has_a_default_profile_with_anti_spoofing_on_vm_networks(manager):
    network(manager, "vmnet")
    network(manager, "storage", no_vm_network=True)
    defaults = {p.name: p for p in profiles(manager).ListVnicProfiles(profiles_pb2.ListVnicProfilesRequest()).profiles}
    assert set(defaults) == {"ovirtmgmt", "vmnet", "storage"}
    assert all(p.is_default and p.network == p.name for p in defaults.values())
    assert defaults["vmnet"].filter.name == "no-mac-spoofing"
    assert defaults["ovirtmgmt"].filter.name == "no-mac-spoofing"   # made by the migration
    assert not defaults["storage"].filter.name                      # no bridge, no vNIC filter


def test_anti_spoofing_off_gives_new_networks_a_default_profile_without_filter(empty_db):
    with running_manager(empty_db, mac_anti_spoofing=False) as manager:
        network(manager, "open")
        assert not get(manager, "open").filter.name
    with running_manager(empty_db) as manager:       # on again: networks made from now on are filtered
        network(manager, "closed")
        assert get(manager, "closed").filter.name == "no-mac-spoofing"
        assert not get(manager, "open").filter.name  # an existing profile is not changed behind the admin's back


def test_deleting_a_network_takes_its_default_profile_and_its_default_cannot_go_alone(manager):
    network(manager, "vmnet")
    err = refused(profiles(manager).DeleteVnicProfile, profiles_pb2.DeleteVnicProfileRequest(name="vmnet"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "own profile" in err.details()
    create(manager, "gold", "vmnet")
    manager.fleet.DeleteNetwork(fleet_pb2.DeleteNetworkRequest(name="vmnet"))
    assert [p[0] for p in listing(manager)] == ["ovirtmgmt"]


# -- CRUD -----------------------------------------------------------------------------------------


def test_create_show_edit_delete(manager):
    network(manager, "vmnet")
    p = create(manager, "gold", "vmnet", qos=parse_qos("in=1000:2000:512,out=500"),
               filter=parse_filter("clean-traffic", ("IP=10.0.0.5", "MAC=52:54:00:AA:BB:CC")), isolated=True)
    assert (p.name, p.network, p.is_default, p.generation, p.isolated) == ("gold", "vmnet", False, 1, True)
    assert qos_text(p.qos) == "in=1000:2000:512,out=500"
    assert [(x.name, x.value) for x in p.filter.parameters] == [("IP", "10.0.0.5"), ("MAC", "52:54:00:aa:bb:cc")]
    edited = profiles(manager).UpdateVnicProfile(profiles_pb2.UpdateVnicProfileRequest(profile=profiles_pb2.VnicProfile(
        name="gold", qos=parse_qos("out=800"), port_mirroring=True)))
    assert (edited.generation, qos_text(edited.qos), edited.filter.name, edited.isolated, edited.port_mirroring) == (
        2, "out=800", "", False, True)
    stale = refused(profiles(manager).UpdateVnicProfile, profiles_pb2.UpdateVnicProfileRequest(
        profile=profiles_pb2.VnicProfile(name="gold", generation=1)))
    assert stale.code() == grpc.StatusCode.ABORTED and get(manager, "gold").generation == 2
    profiles(manager).DeleteVnicProfile(profiles_pb2.DeleteVnicProfileRequest(name="gold"))
    assert refused(get, manager, "gold").code() == grpc.StatusCode.NOT_FOUND


def test_a_name_is_taken_once_per_datacenter_networks_included(manager):
    network(manager, "vmnet")
    create(manager, "gold", "vmnet")
    for name in ("gold", "ovirtmgmt"):
        assert refused(create, manager, name, "vmnet").code() == grpc.StatusCode.ALREADY_EXISTS


BAD = [
    ({"qos": vm_pb2.Bandwidth(inbound=Limit(average=2**31 + 1))}, "profile.qos.inbound.average"),
    ({"qos": vm_pb2.Bandwidth(outbound=Limit(average=10, peak=2**32 - 1))}, "profile.qos.outbound.peak"),
    ({"qos": vm_pb2.Bandwidth(inbound=Limit(peak=100))}, "profile.qos.inbound.average"),
    ({"filter": vm_pb2.NetworkFilter(name="vdsm-no-mac-spoofing")}, "profile.filter.name"),
    ({"filter": vm_pb2.NetworkFilter(name="clean-traffic", parameters=[vm_pb2.FilterParameter(
        name="IP", value="10.0.0.300")])}, "profile.filter.parameters[0].value"),
    ({"filter": vm_pb2.NetworkFilter(name="clean-traffic", parameters=[vm_pb2.FilterParameter(
        name="IP", value="fe80::1")])}, "profile.filter.parameters[0].value"),
    ({"filter": vm_pb2.NetworkFilter(name="clean-traffic", parameters=[vm_pb2.FilterParameter(
        name="MAC", value="01:00:5e:00:00:01")])}, "profile.filter.parameters[0].value"),
    ({"filter": vm_pb2.NetworkFilter(name="clean-traffic", parameters=[vm_pb2.FilterParameter(
        name="$(reboot)", value="1")])}, "profile.filter.parameters[0].name"),
    ({"filter": vm_pb2.NetworkFilter(parameters=[vm_pb2.FilterParameter(name="IP", value="10.0.0.1")])},
     "profile.filter.parameters"),
    ({"name": "a b"}, "profile.name"),
    ({"name": "x" * 64}, "profile.name"),
    ({"network": "storage"}, "profile.network"),
]


@pytest.mark.parametrize("change, field", BAD, ids=[f for _, f in BAD])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(manager, change, field):
    network(manager, "vmnet")
    network(manager, "storage", no_vm_network=True)
    create(manager, "gold", "vmnet")
    before = listing(manager)
    request = {"name": "silver", "network": "vmnet", **change}
    err = refused(profiles(manager).CreateVnicProfile,
                  profiles_pb2.CreateVnicProfileRequest(profile=profiles_pb2.VnicProfile(**request)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith(field + ":"), err.details()
    if "name" not in change and "network" not in change:     # the same settings refused on an edit
        err = refused(profiles(manager).UpdateVnicProfile, profiles_pb2.UpdateVnicProfileRequest(
            profile=profiles_pb2.VnicProfile(**{**request, "name": "gold"})))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith(field + ":")
    assert listing(manager) == before


def test_the_edge_values_of_qos_are_taken(manager):
    network(manager, "vmnet")
    p = create(manager, "edge", "vmnet", qos=vm_pb2.Bandwidth(inbound=Limit(average=1, peak=2**31, burst=2**31)))
    assert (p.qos.inbound.average, p.qos.inbound.peak, p.qos.inbound.burst) == (1, 2**31, 2**31)


def test_a_profile_cannot_move_to_another_network(manager):
    network(manager, "vmnet")
    network(manager, "other")
    create(manager, "gold", "vmnet")
    err = refused(profiles(manager).UpdateVnicProfile, profiles_pb2.UpdateVnicProfileRequest(
        profile=profiles_pb2.VnicProfile(name="gold", network="other")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("profile.network:")


# -- vNICs naming profiles ------------------------------------------------------------------------


def test_a_vnic_on_a_network_gets_its_default_profile_and_may_name_another(manager):
    network(manager, "vmnet")
    create(manager, "gold", "vmnet")
    vm = create_vm(manager, "p1", "nic1=vmnet", "nic2=vmnet,profile=gold", "nic3=virtual:default")
    assert [(n.name, n.network, n.profile) for n in vm.nics] == [
        ("nic1", "vmnet", "vmnet"), ("nic2", "vmnet", "gold"), ("nic3", "", "")]
    added = api(manager).AddNic(vms_pb2.AddNicRequest(vm="p1", nic=vms_pb2.Nic(name="nic4", profile="gold")))
    assert [(n.network, n.profile) for n in added.nics if n.name == "nic4"] == [("vmnet", "gold")]


def test_a_profile_of_another_network_is_refused_and_nothing_changes(manager):
    network(manager, "vmnet")
    network(manager, "other")
    create(manager, "gold", "vmnet")
    create_vm(manager, "p1", "nic1=vmnet")
    err = refused(api(manager).AddNic, vms_pb2.AddNicRequest(vm="p1", nic=vms_pb2.Nic(
        name="nic2", network="other", profile="gold")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("nic.profile:")
    err = refused(create_vm, manager, "p2", "nic1=virtual:default,profile=gold")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("nics[0].profile:")
    assert [n.name for n in api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="p1")).nics] == [
        "nic1"]


def test_templates_and_snapshots_carry_the_profile_to_the_vms_made_from_them(manager):
    network(manager, "vmnet")
    create(manager, "gold", "vmnet")
    create_template(manager, "t1", "nic1=vmnet,profile=gold", "nic2=vmnet")
    vm = create_vm(manager, "p1", template="t1")
    assert [(n.name, n.profile) for n in vm.nics] == [("nic1", "gold"), ("nic2", "vmnet")]
    api(manager).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="p1", name="s1"))
    restored = api(manager).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name="s1")).vm
    assert [(n.name, n.profile) for n in restored.nics] == [("nic1", "gold"), ("nic2", "vmnet")]


def test_deleting_a_profile_in_use_is_refused_listing_its_vnics(manager):
    network(manager, "vmnet")
    create(manager, "gold", "vmnet")
    create_vm(manager, "p1", "nic1=vmnet,profile=gold", "nic2=vmnet,profile=gold")
    create_vm(manager, "p2", "nic1=vmnet,profile=gold")
    assert list(get(manager, "gold").vnics) == ["p1/nic1", "p1/nic2", "p2/nic1"]
    err = refused(profiles(manager).DeleteVnicProfile, profiles_pb2.DeleteVnicProfileRequest(name="gold"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "p1/nic1, p1/nic2, p2/nic1" in err.details()
    api(manager).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="p1"))
    api(manager).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name="p2"))
    create_template(manager, "t1", "nic1=vmnet,profile=gold")
    err = refused(profiles(manager).DeleteVnicProfile, profiles_pb2.DeleteVnicProfileRequest(name="gold"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "template t1" in err.details()


def test_link_of_a_stopped_vm_is_recorded_and_passthrough_is_refused(manager):
    network(manager, "vmnet")
    create_vm(manager, "p1", "nic1=vmnet", "nic2=direct:eth1,mode=passthrough")
    vm = api(manager).SetNicLink(vms_pb2.SetNicLinkRequest(vm="p1", nic="nic1", up=False))
    assert [(n.name, n.link_down) for n in vm.nics] == [("nic1", True), ("nic2", False)]
    err = refused(api(manager).SetNicLink, vms_pb2.SetNicLinkRequest(vm="p1", nic="nic2", up=False))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("nic:")
    assert refused(api(manager).SetNicLink, vms_pb2.SetNicLinkRequest(vm="p1", nic="nic9")).code() == (
        grpc.StatusCode.NOT_FOUND)


def test_a_stopped_vm_is_never_out_of_sync_and_has_nothing_to_sync(manager):
    network(manager, "vmnet")
    create(manager, "gold", "vmnet")
    create_vm(manager, "p1", "nic1=vmnet,profile=gold")
    profiles(manager).UpdateVnicProfile(profiles_pb2.UpdateVnicProfileRequest(profile=profiles_pb2.VnicProfile(
        name="gold", isolated=True)))
    vm = api(manager).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name="p1"))
    assert not vm.nics[0].profile_out_of_sync
    reply = api(manager).SyncNics(vms_pb2.SyncNicsRequest(vm="p1"))
    assert list(reply.results) == []
