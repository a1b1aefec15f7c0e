"""The network filters this host's libvirt has: a vNIC may name only those.

libvirt would refuse an unknown filter only when the guest starts or the device is
updated, with a message naming neither the vNIC nor the field; asking first keeps
"nothing changes" true for a bad name.
"""
from __future__ import annotations

from typing import Iterable

import libvirt

from .spec import VNicSpec
from .validation import check_filters_exist


def known_filters(conn: libvirt.virConnect) -> set[str]:
    """Empty when the host's libvirt has no nwfilter driver (the test driver, a daemon built without it)."""
    try:
        return set(conn.listNWFilters())
    except libvirt.libvirtError:
        return set()


def check_filters(conn: libvirt.virConnect, nics: Iterable[tuple[str, VNicSpec]]) -> None:
    """INVALID_ARGUMENT naming `WHERE.filter.name` for a filter libvirt does not have (see check_filters_exist)."""
    pairs = [(where, nic) for where, nic in nics if nic.filter is not None]
    if pairs:
        check_filters_exist(pairs, known_filters(conn))
