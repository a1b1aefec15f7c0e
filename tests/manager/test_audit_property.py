"""Property: a host that is as desired, reported or recorded in any equivalent form, yields no finding."""
from __future__ import annotations

from hypothesis import given, strategies as st

from manager.audit import audit
from manager.audit.inputs import FleetInput, HostInput, VnicInput
from manager.domain.vnic import VnicKind
from tests.manager.test_netcompare import attachments, carrying, equivalent
from virtfleet.v1 import netstate_pb2

MODES = [("passthrough", "passthru"), ("passthru", "passthrough"), ("bridge", "bridge"), ("vepa", "vepa"),
         ("private", "private"), (None, "vepa")]  # (recorded, as the kernel reports it)


def mac_forms(octets: list[int], form: int) -> str:
    """One MAC, written the ways people and tools write it."""
    text = [f"{o:02x}" for o in octets]
    if form == 0:
        return ":".join(text)
    if form == 1:
        return "-".join(text).upper()
    if form == 2:
        joined = "".join(text)
        return ".".join(joined[i:i + 4] for i in range(0, 12, 4))
    return " " + ":".join(text).upper() + " "


guest_macs = st.lists(st.integers(0, 255), min_size=5, max_size=5).map(lambda rest: [0x52, *rest])


@given(attachments(), st.integers(0, 7), st.integers(0, 7), st.integers(0, 3),
       guest_macs, guest_macs, st.integers(0, 3), st.sampled_from(MODES), st.booleans())
def test_equivalent_forms_never_produce_a_finding(att, shuffle, link_order, form, tap_guest, direct_guest, mac_form,
                                                  modes, name_the_device):
    if tap_guest[3:] == direct_guest[3:]:
        direct_guest = [*direct_guest[:5], (direct_guest[5] + 1) % 256]
    state = carrying(att, extra_addresses=[], shuffle=shuffle, link_order=link_order)
    recorded_mode, kernel_mode = modes
    next_index = len(state.links) + 10
    tap = netstate_pb2.Link(index=next_index, name="vnet7", kind="tun", mtu=1500, flags=["UP"],
                            mac=":".join(f"{o:02x}" for o in [0xFE, *tap_guest[1:]]))
    vnics = []
    if att.bridged:
        tap.master = att.network
        vnics.append(VnicInput(vm="vm1", name="nic1", mac=mac_forms(tap_guest, mac_form), kind=VnicKind.BRIDGE,
                               host="h1", network=att.network, host_device="vnet7" if name_the_device else None))
    state.links.append(tap)
    state.links.append(netstate_pb2.Link(index=next_index + 1, name="macvtap3", kind="macvtap", mtu=1500,
                                         flags=["UP"], mac=":".join(f"{o:02x}" for o in direct_guest),
                                         macvtap_mode=kernel_mode, parent=att.nic))
    vnics.append(VnicInput(vm="vm1", name="nic2", mac=mac_forms(direct_guest, 3 - mac_form), kind=VnicKind.DIRECT,
                           host="h1", direct_nic=att.nic, direct_mode=recorded_mode))
    allocated = {mac_forms(tap_guest, (mac_form + 1) % 4), mac_forms(direct_guest, (mac_form + 2) % 4)}
    host = HostInput(name="h1", address="203.0.113.250", state=state, reachable=True, silent_s=0.2,
                     desired=[equivalent(att, form)])
    assert audit(FleetInput(hosts=[host], vnics=vnics, allocated_macs=allocated)) == []
