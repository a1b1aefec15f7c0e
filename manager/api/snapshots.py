"""Snapshots and a restore's MAC changes in the contract's messages."""
from __future__ import annotations

from virtfleet.v1 import vms_pb2

from ..service.snapshots import MacChange, SnapshotView
from .timestamps import timestamp
from .vm_messages import guest_nic_messages, put_boot


def snapshot_message(s: SnapshotView) -> vms_pb2.Snapshot:
    """Each vNIC's `guest_name` is what its VM's guest last called it when the snapshot was taken."""
    r = s.snapshot
    msg = vms_pb2.Snapshot(name=r.name, vm=r.vm, memory_mib=r.memory_mib, vcpus=r.vcpus,
                           nics=guest_nic_messages(s.nics, s.guest_names), created_at=timestamp(r.created_at))
    put_boot(msg, r.boot, r.domain_type)
    return msg


def mac_change_message(c: MacChange) -> vms_pb2.MacChange:
    return vms_pb2.MacChange(nic=c.nic, old_mac=c.old_mac, new_mac=c.new_mac)
