"""libvirt virtual-network XML (seed 003's modes) to and from a typed spec; pure functions.

nat / routed / open / isolated networks get a bridge libvirt creates (named by the
spec, or virbrN by libvirt), the host's address on it and, when asked, a DHCP range
served by dnsmasq; a bridged network only points libvirt at an existing host bridge.
"""
from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from .spec import NetworkMode, VirtualNetworkSpec

_FORWARD = {NetworkMode.NAT: "nat", NetworkMode.ROUTED: "route", NetworkMode.BRIDGED: "bridge",
            NetworkMode.OPEN: "open"}  # isolated: no <forward> at all
_MODE_OF_FORWARD = {v: k for k, v in _FORWARD.items()}


def build_network_xml(net: VirtualNetworkSpec) -> str:
    """The spec must already be validated (validation.validate_network)."""
    root = ET.Element("network")
    ET.SubElement(root, "name").text = net.name
    if net.uuid:
        ET.SubElement(root, "uuid").text = net.uuid
    if net.mode in _FORWARD:
        fwd = ET.SubElement(root, "forward", mode=_FORWARD[net.mode])
        if net.forward_dev:
            fwd.set("dev", net.forward_dev)
    if net.mode == NetworkMode.BRIDGED:
        ET.SubElement(root, "bridge", name=net.bridge)
        return _to_text(root)
    bridge = ET.SubElement(root, "bridge", stp="on", delay="0")
    if net.bridge:
        bridge.set("name", net.bridge)
    if net.address:
        ip = ET.SubElement(root, "ip", address=net.address, prefix=str(net.prefixlen))
        if net.dhcp_start:
            dhcp = ET.SubElement(ip, "dhcp")
            ET.SubElement(dhcp, "range", start=net.dhcp_start, end=net.dhcp_end)
    return _to_text(root)


def parse_network_xml(text: str) -> VirtualNetworkSpec:
    """What libvirt reports back, in the same terms (first IPv4 address and range only)."""
    root = ET.fromstring(text)
    fwd = root.find("forward")
    mode = NetworkMode.ISOLATED if fwd is None else _MODE_OF_FORWARD.get(fwd.get("mode", "nat"))
    bridge = root.find("bridge")
    address, prefixlen, start, end = "", 0, "", ""
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4":
            continue
        address = ip.get("address", "")
        if ip.get("prefix"):
            prefixlen = int(ip.get("prefix"))
        elif ip.get("netmask"):
            prefixlen = ipaddress.IPv4Network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
        rng = ip.find("dhcp/range")
        if rng is not None:
            start, end = rng.get("start", ""), rng.get("end", "")
        break
    return VirtualNetworkSpec(
        name=root.findtext("name", ""), mode=mode, bridge="" if bridge is None else bridge.get("name", ""),
        uuid=root.findtext("uuid", ""), address=address, prefixlen=prefixlen, dhcp_start=start, dhcp_end=end,
        forward_dev="" if fwd is None else fwd.get("dev", ""),
    )


def _to_text(el: ET.Element) -> str:
    ET.indent(el)
    return ET.tostring(el, encoding="unicode") + "\n"
