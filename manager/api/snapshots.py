"""Snapshots and a restore's MAC changes in the contract's messages."""
from __future__ import annotations

from virtfleet.v1 import vms_pb2

from ..service.snapshots import MacChange, SnapshotView
from .timestamps import timestamp
from .vnics import vnic_message


def snapshot_message(s: SnapshotView) -> vms_pb2.Snapshot:
    r = s.snapshot
    return vms_pb2.Snapshot(name=r.name, vm=r.vm, memory_mib=r.memory_mib, vcpus=r.vcpus,
                            nics=[vnic_message(n) for n in s.nics], created_at=timestamp(r.created_at))


def mac_change_message(c: MacChange) -> vms_pb2.MacChange:
    return vms_pb2.MacChange(nic=c.nic, old_mac=c.old_mac, new_mac=c.new_mac)
