"""Running vNICs whose profile was edited since they were given it (until `vm nic sync` or a restart)."""
from __future__ import annotations

from .findings import VNIC_PROFILE, Finding, Severity
from .inputs import ProfileSyncInput


def profile_sync_findings(item: ProfileSyncInput) -> list[Finding]:
    """A warning: the vNIC works, with the settings it had when it was last applied."""
    applied = "none (started before vNIC profiles)" if item.applied is None else f"generation {item.applied}"
    return [Finding(VNIC_PROFILE, Severity.WARNING, item.host, f"vm {item.vm} vNIC {item.nic}: profile {item.profile}",
                    f"generation {item.current}", applied,
                    f"virtfleet vm nic sync {item.vm} {item.nic} (what libvirt cannot change live needs a restart)")]
