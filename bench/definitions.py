"""The baseline's domain XML: the agent's own definition of a VM, under another name.

Benchmarks that compare a start through virtfleet with bare libvirt hand libvirt exactly
what the agent defined, so the two paths differ only by what virtfleet adds.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt


def renamed_definition(conn: libvirt.virConnect, name: str, new_name: str) -> ET.Element:
    """VM `name`'s inactive definition, renamed, without its UUID (libvirt gives the copy its own)."""
    root = ET.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    root.find("name").text = new_name
    uuid_el = root.find("uuid")
    if uuid_el is not None:
        root.remove(uuid_el)
    return root
