"""virtfleet host agent: this host's network and VMs, driven by the manager."""

__version__ = "0.1.0"
