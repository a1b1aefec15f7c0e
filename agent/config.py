"""Agent settings: defaults, then /etc/virtfleet/agent.toml, then command-line flags."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from virtfleet.tls import DEFAULT_AGENT_PORT

DEFAULT_CONFIG = Path("/etc/virtfleet/agent.toml")


@dataclass(frozen=True)
class AgentConfig:
    listen: str = f"0.0.0.0:{DEFAULT_AGENT_PORT}"  # HOST:PORT, or unix:///path for lab hosts
    pki_dir: Path = Path("/etc/pki/virtfleet-agent")
    state_dir: Path = Path("/var/lib/virtfleet-agent")
    log_level: str = "INFO"
    libvirt_uri: str = "qemu:///system"  # lab hosts: qemu+unix:///system?socket=... of their own libvirtd
    vm_changes_max: int = 8  # VM changes at once (of the server's 16 workers); more: RESOURCE_EXHAUSTED
    health_socket: str = "/run/virtfleet/agent-health.sock"  # grpc.health.v1 for local checks (0600, no TLS); "" off
    guest_cache: str = ""  # the test guest's cache; "": $VIRTFLEET_GUEST_CACHE, else /var/cache/virtfleet/guest
    libvirt_pki_dir: str = ""  # libvirtd's TLS files (cacert.pem, server/client cert and key); "": PKI_DIR/libvirt

    @classmethod
    def load(cls, path: Path | None, **overrides: object) -> "AgentConfig":
        cfg = cls()
        source = path or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        if source is not None:
            data = tomllib.loads(source.read_text())
            unknown = set(data) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"{source}: unknown settings {sorted(unknown)}")
            cfg = replace(cfg, **data)
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
        return replace(cfg, pki_dir=Path(cfg.pki_dir), state_dir=Path(cfg.state_dir))

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "netjournal.json"

    @property
    def netconfig_path(self) -> Path:
        """The committed host network configuration, restored onto the kernel at start."""
        return self.state_dir / "netconfig.json"

    @property
    def console_dir(self) -> Path:
        """Serial consoles of VMs with an OS, NAME.log each: the agent's own directory (a lab host's libvirtd
        has a private /var/log/libvirt the agent cannot see)."""
        return self.state_dir / "console"

    @property
    def libvirt_pki(self) -> Path:
        """Where the agent keeps libvirtd's copy of its certificate (agent.virt.libvirt_pki): what libvirtd.conf's
        key_file/cert_file/ca_file name, and the `pkipath` of a peer-to-peer migration's destination URI."""
        return Path(self.libvirt_pki_dir) if self.libvirt_pki_dir else Path(self.pki_dir) / "libvirt"

    @property
    def guest_cache_dir(self) -> Path | None:
        return Path(self.guest_cache) if self.guest_cache else None
