"""ProfileService: vNIC profiles; the contract's messages ⇄ the typed profile, parsed at the door."""
from __future__ import annotations

from virtfleet.rpc import translating_errors
from virtfleet.v1 import profiles_pb2, profiles_pb2_grpc

from ..domain.vnicprofile import ProfileSettings, network_filter, qos_limit
from ..service.profiles import ProfileService, ProfileView
from ..service.vnic_messages import bandwidth_message, filter_message


def settings_from_message(p: profiles_pb2.VnicProfile, field: str = "profile") -> ProfileSettings:
    """Every value checked naming its field: `profile.qos.inbound.peak`, `profile.filter.parameters[1].value`."""
    inbound, outbound = p.qos.inbound, p.qos.outbound
    name, params = network_filter(p.filter.name, [(x.name, x.value) for x in p.filter.parameters], f"{field}.filter")
    return ProfileSettings(
        inbound=qos_limit(inbound.average, inbound.peak, inbound.burst, f"{field}.qos.inbound"),
        outbound=qos_limit(outbound.average, outbound.peak, outbound.burst, f"{field}.qos.outbound"),
        filter_name=name, filter_parameters=params, port_mirroring=p.port_mirroring, isolated=p.isolated,
        mtu_to_guest=p.mtu_to_guest)


def profile_message(v: ProfileView) -> profiles_pb2.VnicProfile:
    p, s = v.profile, v.profile.settings
    return profiles_pb2.VnicProfile(
        name=p.name, datacenter=p.datacenter, network=p.network, qos=bandwidth_message(s), filter=filter_message(s),
        port_mirroring=s.port_mirroring, isolated=s.isolated, mtu_to_guest=s.mtu_to_guest, is_default=p.is_default,
        generation=p.generation, vnics=v.vnics)


class ProfileServicer(profiles_pb2_grpc.ProfileServiceServicer):
    def __init__(self, profiles: ProfileService) -> None:
        self._profiles = profiles

    @translating_errors
    def CreateVnicProfile(self, request, context):
        p = request.profile
        return profile_message(self._profiles.create(name=p.name, datacenter=p.datacenter, network=p.network,
                                                     settings=settings_from_message(p)))

    @translating_errors
    def ListVnicProfiles(self, request, context):
        return profiles_pb2.ListVnicProfilesResponse(profiles=[
            profile_message(v) for v in self._profiles.list(datacenter=request.datacenter, network=request.network)])

    @translating_errors
    def GetVnicProfile(self, request, context):
        return profile_message(self._profiles.get(request.name, request.datacenter))

    @translating_errors
    def UpdateVnicProfile(self, request, context):
        p = request.profile
        return profile_message(self._profiles.update(name=p.name, datacenter=p.datacenter, network=p.network,
                                                     settings=settings_from_message(p), based_on=p.generation))

    @translating_errors
    def DeleteVnicProfile(self, request, context):
        self._profiles.delete(request.name, request.datacenter)
        return profiles_pb2.DeleteVnicProfileResponse()
