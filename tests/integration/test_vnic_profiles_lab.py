"""Issue 15's vNIC profile settings on real libvirt + QEMU in a lab host, through VmAgentService.

Diskless guests (KVM here, fast): what is proven is what the host does — libvirt's
live XML, tc on the tap, ebtables/nft in the host's namespace, the bridge port's
flags, the mirroring filters on the bridge. What a guest sees (spoofing blocked, the
QoS rate, isolation, a capture) is for the tests with a guest that has an OS.
"""
from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import grpc
import pytest

from virtfleet.rpc import field_violations
from virtfleet.v1 import vm_pb2

from .conftest import sh

BRIDGE = "br-prof"


def nic(name: str, mac_last: int, **kw) -> vm_pb2.VNic:
    return vm_pb2.VNic(name=name, kind=vm_pb2.VNIC_KIND_BRIDGE, source=BRIDGE, mac=f"52:54:00:b5:00:{mac_last:02x}",
                       **kw)


def limit(values: tuple[int, ...]) -> vm_pb2.BandwidthLimit:
    return vm_pb2.BandwidthLimit(**dict(zip(("average", "peak", "burst"), values)))


def qos(inbound=(), outbound=()) -> vm_pb2.Bandwidth:
    """(average, peak, burst) per direction, kbytes/s and kbytes; () for none."""
    return vm_pb2.Bandwidth(inbound=limit(inbound), outbound=limit(outbound))


@pytest.fixture(scope="module")
def host(vm_lab, vm_agent):
    sh("ip", "-n", vm_lab.netns, "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "-n", vm_lab.netns, "link", "set", BRIDGE, "up")
    yield vm_lab
    for vm in vm_agent.ListVms(vm_pb2.ListVmsRequest()).vms:
        if vm.name.startswith("prof-"):
            if vm.state != vm_pb2.VM_STATE_SHUTOFF:
                vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name=vm.name))
            vm_agent.UndefineVm(vm_pb2.UndefineVmRequest(name=vm.name))
    sh("ip", "-n", vm_lab.netns, "link", "del", BRIDGE)


def run_vm(agent, name: str, *nics: vm_pb2.VNic) -> vm_pb2.VmStatus:
    agent.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(name=name, memory_mib=64, vcpus=1, nics=nics)))
    return agent.StartVm(vm_pb2.StartVmRequest(name=name))


def gone(agent, name: str) -> None:
    agent.DestroyVm(vm_pb2.DestroyVmRequest(name=name))
    agent.UndefineVm(vm_pb2.UndefineVmRequest(name=name))


def tap_of(status: vm_pb2.VmStatus, nic_name: str) -> str:
    return {n.name: n.host_device for n in status.nics}[nic_name]


def live_iface(lab, vm: str, nic_name: str) -> ET.Element:
    return next(i for i in lab.live_interfaces(vm) if i.find("alias").get("name") == f"ua-{nic_name}")


def defined_iface(lab, vm: str, nic_name: str) -> ET.Element:
    root = ET.fromstring(lab.virsh("dumpxml", "--inactive", vm))
    return next(i for i in root.findall("devices/interface") if i.find("alias").get("name") == f"ua-{nic_name}")


def tc_json(lab, *args: str) -> list[dict]:
    return json.loads(sh("tc", "-n", lab.netns, "-j", *args) or "[]")


def link(lab, dev: str) -> dict:
    return lab.ip_json("-d", "link", "show", "dev", dev)[0]


def refused_field(call) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return field_violations(err.value)[0][0]


def update(agent, vm: str, new: vm_pb2.VNic) -> vm_pb2.UpdateNicResponse:
    return agent.UpdateNic(vm_pb2.UpdateNicRequest(vm=vm, nic=new))


# --- nwfilter in the lab --------------------------------------------------------------------------

def test_each_lab_libvirtd_has_libvirts_default_filters(host):
    names = {line.split()[1] for line in host.virsh("nwfilter-list").splitlines()[2:] if line.split()}
    assert {"clean-traffic", "no-mac-spoofing", "no-ip-spoofing", "allow-dhcp"} <= names


def nft_tables_here() -> set[tuple[int, str]]:
    """The nf_tables tables of the machine's own namespace, read over netlink (nothing is created)."""
    from pyroute2.nftables.main import NFTables
    nft = NFTables()
    try:
        return {(t["nfgen_family"], t.get_attr("NFTA_TABLE_NAME")) for t in nft.get_tables()}
    finally:
        nft.close()


def test_a_filter_lands_in_the_live_xml_and_its_rules_only_in_the_hosts_namespace(host, vm_agent):
    before = nft_tables_here()
    ref = vm_pb2.NetworkFilter(name="clean-traffic", parameters=[vm_pb2.FilterParameter(name="IP", value="192.0.2.77")])
    status = run_vm(vm_agent, "prof-filter", nic("nic1", 1, filter=ref))
    tap = tap_of(status, "nic1")
    try:
        el = live_iface(host, "prof-filter", "nic1").find("filterref")
        assert el.get("filter") == "clean-traffic"
        assert [(p.get("name"), p.get("value")) for p in el.findall("parameter")] == [("IP", "192.0.2.77")]
        rules = sh("ip", "netns", "exec", host.netns, "ebtables", "-t", "nat", "-L")
        assert f"libvirt-I-{tap}" in rules and f"libvirt-O-{tap}" in rules
        assert "192.0.2.77" in sh("ip", "netns", "exec", host.netns, "ebtables", "-t", "nat", "-L", f"I-{tap}-ipv4-ip")
        assert nft_tables_here() == before
    finally:
        gone(vm_agent, "prof-filter")
    assert f"libvirt-I-{tap}" not in sh("ip", "netns", "exec", host.netns, "ebtables", "-t", "nat", "-L")


def test_a_filter_the_host_lacks_is_refused_naming_the_field_and_nothing_is_defined(host, vm_agent):
    spec = vm_pb2.VmSpec(name="prof-nofilter", memory_mib=64, vcpus=1,
                         nics=[nic("nic1", 2, filter=vm_pb2.NetworkFilter(name="vdsm-no-mac-spoofing"))])
    assert refused_field(lambda: vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))) == "spec.nics[0].filter.name"
    assert "prof-nofilter" not in host.virsh("list", "--all", "--name")


# --- QoS ------------------------------------------------------------------------------------------

def tap_limits(lab, tap: str) -> tuple[set[str], str]:
    """(qdisc kinds on the tap, the tc text of its classes and ingress filters)."""
    kinds = {q["kind"] for q in tc_json(lab, "qdisc", "show", "dev", tap)}
    text = sh("tc", "-n", lab.netns, "class", "show", "dev", tap) + sh(
        "tc", "-n", lab.netns, "filter", "show", "dev", tap, "parent", "ffff:")
    return kinds, text


def libvirt_qos_kernel_gap() -> str | None:
    """What libvirt's <bandwidth> needs from tc that this kernel lacks (sfq, fw, police), probed on a veth in a
    namespace of our own; None when all is there."""
    ns = f"vft-qos-probe-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "name", "qa", "type", "veth", "peer", "name", "qb")
        sh("tc", "-n", ns, "qdisc", "add", "dev", "qa", "root", "handle", "1:", "htb", "default", "1")
        sh("tc", "-n", ns, "class", "add", "dev", "qa", "parent", "1:", "classid", "1:1", "htb", "rate", "8mbit")
        sh("tc", "-n", ns, "qdisc", "add", "dev", "qa", "ingress")
        probes = {"the sfq qdisc": ["qdisc", "add", "dev", "qa", "parent", "1:1", "handle", "2:", "sfq"],
                  "the fw classifier": ["filter", "add", "dev", "qa", "parent", "1:0", "protocol", "all", "prio", "1",
                                        "handle", "1", "fw", "flowid", "1"],
                  "the police action": ["filter", "add", "dev", "qa", "parent", "ffff:", "protocol", "all", "u32",
                                        "match", "u32", "0", "0", "police", "rate", "4mbit", "burst", "100k", "drop"]}
        missing = [what for what, argv in probes.items()
                   if subprocess.run(["tc", "-n", ns, *argv], capture_output=True).returncode != 0]
        return ", ".join(missing) or None
    finally:
        sh("ip", "netns", "del", ns)


def test_bandwidth_is_in_the_definition_and_an_update_of_a_stopped_vm_changes_it_there(host, vm_agent):
    vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=vm_pb2.VmSpec(
        name="prof-qos-def", memory_mib=64, vcpus=1, nics=[nic("nic1", 14, bandwidth=qos((1000, 2000, 100), (500,)))])))
    try:
        bw = defined_iface(host, "prof-qos-def", "nic1").find("bandwidth")
        assert bw.find("inbound").attrib == {"average": "1000", "peak": "2000", "burst": "100"}
        assert bw.find("outbound").attrib == {"average": "500"}
        done = update(vm_agent, "prof-qos-def", nic("nic1", 14, bandwidth=qos(outbound=(250,))))
        assert not done.applied_live and list(done.needs_restart) == []
        bw = defined_iface(host, "prof-qos-def", "nic1").find("bandwidth")
        assert bw.find("inbound") is None and bw.find("outbound").get("average") == "250"
    finally:
        vm_agent.UndefineVm(vm_pb2.UndefineVmRequest(name="prof-qos-def"))


def test_bandwidth_is_in_the_live_xml_and_in_tc_on_the_tap(host, vm_agent):
    gap = libvirt_qos_kernel_gap()
    if gap:
        pytest.skip(f"this kernel lacks {gap}, which libvirt's <bandwidth> uses on the tap")
    status = run_vm(vm_agent, "prof-qos", nic("nic1", 3, bandwidth=qos((1000, 2000, 100), (500,))))
    tap = tap_of(status, "nic1")
    try:
        bw = live_iface(host, "prof-qos", "nic1").find("bandwidth")
        assert bw.find("inbound").attrib == {"average": "1000", "peak": "2000", "burst": "100"}
        assert bw.find("outbound").attrib == {"average": "500"}
        kinds, text = tap_limits(host, tap)
        assert {"htb", "ingress"} <= kinds          # inbound: htb on the tap's egress; outbound: policed ingress
        assert "rate 8Mbit" in text and "ceil 16Mbit" in text   # 1000 / 2000 kB/s
        assert "police" in text and "rate 4Mbit" in text        # 500 kB/s

        new = update(vm_agent, "prof-qos", nic("nic1", 3, bandwidth=qos((250,))))
        assert new.applied_live and list(new.needs_restart) == []
        _, text = tap_limits(host, tap)
        assert "rate 2Mbit" in text and "police" not in text
        assert defined_iface(host, "prof-qos", "nic1").find("bandwidth/inbound").get("average") == "250"

        update(vm_agent, "prof-qos", nic("nic1", 3))
        kinds, _ = tap_limits(host, tap)
        assert not {"htb", "ingress"} & kinds
        assert live_iface(host, "prof-qos", "nic1").find("bandwidth") is None
    finally:
        gone(vm_agent, "prof-qos")


@pytest.mark.parametrize("limit", [((1 << 31) + 1,), (0, 5)], ids=["too-fast", "peak-without-average"])
def test_bad_qos_is_refused_naming_the_field(host, vm_agent, limit):
    spec = vm_pb2.VmSpec(name="prof-badqos", memory_mib=64, vcpus=1, nics=[nic("nic1", 4, bandwidth=qos((), limit))])
    assert refused_field(lambda: vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))) == \
        "spec.nics[0].bandwidth.outbound.average"


# --- link state -----------------------------------------------------------------------------------

def test_link_down_and_up_live_the_tap_follows(host, vm_agent):
    status = run_vm(vm_agent, "prof-link", nic("nic1", 5))
    tap = tap_of(status, "nic1")
    try:
        down = update(vm_agent, "prof-link", nic("nic1", 5, link_down=True))
        assert down.applied_live and list(down.needs_restart) == []
        assert host.virsh("domif-getlink", "prof-link", tap).split()[-1] == "down"
        assert "UP" not in link(host, tap)["flags"]
        assert defined_iface(host, "prof-link", "nic1").find("link").get("state") == "down"

        up = update(vm_agent, "prof-link", nic("nic1", 5))
        assert up.applied_live
        assert host.virsh("domif-getlink", "prof-link", tap).split()[-1] == "up"
        assert "UP" in link(host, tap)["flags"]
    finally:
        gone(vm_agent, "prof-link")


def test_a_vm_started_with_its_link_down_has_its_tap_down(host, vm_agent):
    status = run_vm(vm_agent, "prof-link0", nic("nic1", 6, link_down=True))
    try:
        tap = tap_of(status, "nic1")
        assert host.virsh("domif-getlink", "prof-link0", tap).split()[-1] == "down"
        assert "UP" not in link(host, tap)["flags"]
    finally:
        gone(vm_agent, "prof-link0")


def test_an_update_may_not_change_what_the_vnic_is(host, vm_agent):
    run_vm(vm_agent, "prof-ident", nic("nic1", 7))
    try:
        other = vm_pb2.VNic(name="nic1", kind=vm_pb2.VNIC_KIND_BRIDGE, source="br-other", link_down=True)
        assert refused_field(lambda: update(vm_agent, "prof-ident", other)) == "nic.source"
        assert refused_field(lambda: update(vm_agent, "prof-ident", nic("nic1", 8, link_down=True))) == "nic.mac"
        assert live_iface(host, "prof-ident", "nic1").find("link") is None   # nothing changed
    finally:
        gone(vm_agent, "prof-ident")


# --- isolation ------------------------------------------------------------------------------------

def bridge_port(lab, dev: str) -> dict:
    return json.loads(sh("bridge", "-n", lab.netns, "-d", "-j", "link", "show", "dev", dev))[0]


def test_isolated_vnic_is_an_isolated_bridge_port_and_changing_it_needs_a_restart(host, vm_agent):
    status = run_vm(vm_agent, "prof-iso", nic("nic1", 9, isolated=True), nic("nic2", 10))
    try:
        assert bridge_port(host, tap_of(status, "nic1"))["isolated"] is True
        assert bridge_port(host, tap_of(status, "nic2"))["isolated"] is False

        done = update(vm_agent, "prof-iso", nic("nic2", 10, isolated=True, mtu=1400))
        assert not done.applied_live and sorted(done.needs_restart) == ["isolated", "mtu"]
        assert bridge_port(host, tap_of(status, "nic2"))["isolated"] is False   # the running port is as it was
        assert defined_iface(host, "prof-iso", "nic2").find("port").get("isolated") == "yes"
        assert defined_iface(host, "prof-iso", "nic2").find("mtu").get("size") == "1400"

        vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name="prof-iso"))
        status = vm_agent.StartVm(vm_pb2.StartVmRequest(name="prof-iso"))
        assert bridge_port(host, tap_of(status, "nic2"))["isolated"] is True
        assert link(host, tap_of(status, "nic2"))["mtu"] == 1400
    finally:
        gone(vm_agent, "prof-iso")


# --- port mirroring -------------------------------------------------------------------------------

def mirror_targets(lab) -> dict[str, set[str]]:
    """Hook → the devices our filters on the bridge mirror to (tc's own words)."""
    found = {}
    for hook in ("ingress", "egress"):
        text = subprocess.run(["tc", "-n", lab.netns, "filter", "show", "dev", BRIDGE, hook], capture_output=True,
                              text=True).stdout
        found[hook] = {line.split("Egress Mirror to device ")[1].split(")")[0]
                       for line in text.splitlines() if "Egress Mirror to device" in line}
    return found


def test_mirroring_follows_start_hot_plug_update_unplug_and_stop(host, vm_agent):
    watcher = run_vm(vm_agent, "prof-mirror", nic("mon", 11, port_mirroring=True))
    run_vm(vm_agent, "prof-mirror2", nic("nic1", 12))
    try:
        tap = tap_of(watcher, "mon")
        assert mirror_targets(host) == {"ingress": {tap}, "egress": {tap}}
        assert "PROMISC" in link(host, BRIDGE)["flags"]

        plugged = vm_agent.AttachNic(vm_pb2.AttachNicRequest(vm="prof-mirror2", nic=nic("mon2", 13,
                                                                                        port_mirroring=True)))
        tap2 = tap_of(plugged, "mon2")
        assert mirror_targets(host) == {"ingress": {tap, tap2}, "egress": {tap, tap2}}

        done = update(vm_agent, "prof-mirror", nic("mon", 11))
        assert done.applied_live
        assert mirror_targets(host) == {"ingress": {tap2}, "egress": {tap2}}
        update(vm_agent, "prof-mirror", nic("mon", 11, port_mirroring=True))
        assert mirror_targets(host) == {"ingress": {tap, tap2}, "egress": {tap, tap2}}

        vm_agent.DetachNic(vm_pb2.DetachNicRequest(vm="prof-mirror2", nic="mon2"))
        assert mirror_targets(host) == {"ingress": {tap}, "egress": {tap}}

        vm_agent.DestroyVm(vm_pb2.DestroyVmRequest(name="prof-mirror"))
        assert mirror_targets(host) == {"ingress": set(), "egress": set()}
        assert "clsact" not in {q["kind"] for q in tc_json(host, "qdisc", "show", "dev", BRIDGE)}
        assert "PROMISC" not in link(host, BRIDGE)["flags"]

        restarted = vm_agent.StartVm(vm_pb2.StartVmRequest(name="prof-mirror"))   # the wish is in the definition
        assert mirror_targets(host)["ingress"] == {tap_of(restarted, "mon")}
    finally:
        gone(vm_agent, "prof-mirror")
        gone(vm_agent, "prof-mirror2")
    assert mirror_targets(host) == {"ingress": set(), "egress": set()}


def test_mirroring_is_refused_on_a_direct_vnic(host, vm_agent):
    bad = vm_pb2.VNic(name="nic1", kind=vm_pb2.VNIC_KIND_DIRECT, source="eth5", port_mirroring=True)
    spec = vm_pb2.VmSpec(name="prof-mirror-direct", memory_mib=64, vcpus=1, nics=[bad])
    assert refused_field(lambda: vm_agent.DefineVm(vm_pb2.DefineVmRequest(spec=spec))) == "spec.nics[0].port_mirroring"
