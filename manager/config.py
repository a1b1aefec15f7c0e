"""Manager settings: defaults, then /etc/virtfleet/manager.toml, then command-line flags."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/virtfleet/manager.toml")


@dataclass(frozen=True)
class ManagerConfig:
    dsn: str = "dbname=virtfleet"
    # unix socket of the fleet API, mode 0666: each call's caller is identified (uid via `<listen>.login`)
    # and authorized by role, so the socket's file permissions are no longer the access control
    listen: str = "/run/virtfleet/manager.sock"
    pki_dir: Path = Path("/etc/pki/virtfleet")
    log_level: str = "INFO"
    agent_timeout_s: float = 30.0
    mac_pool_warn_free_percent: float = 5.0   # warn (log + event) when a MAC pool's free addresses fall to this
    audit_interval_s: float = 300.0          # periodic audit; 0 turns it off (on demand only)
    host_unreachable_after_s: float = 30.0   # a host silent this long (agents heartbeat at a third of it) is unreachable
    db_connect_timeout_s: int = 2            # a connection attempt to PostgreSQL gives up after this (libpq: at least 2)
    db_wait_s: float = 10.0                  # a call waits this long for a busy pool's connection (RESOURCE_EXHAUSTED after)
    fleet_listen: str = ""                   # remote fleet API, TLS + admin client certificates ("[::]:54322"); "" off
    admin_group: str = "virtfleet-admin"     # local users in this group (and root) are admins on the unix socket
    operator_group: str = "virtfleet-operator"
    auditor_group: str = "virtfleet-auditor"
    session_ttl_s: float = 600.0             # a unix-socket login lasts this long (groups are re-read at the next)
    events_keep_days: int = 400              # audit-trail rows older than this are purged, once a day
    vm_changes_max: int = 12                 # VM starts/stops waiting on agents at once (of 16 API workers); more: RESOURCE_EXHAUSTED
    agent_cert_lifetime_s: float = 365 * 86400.0    # agents renew at two thirds of it
    manager_cert_lifetime_s: float = 365 * 86400.0  # the manager's client certificate, rotated at two thirds
    ca_lifetime_s: float = 3650 * 86400.0           # a CA made by the manager or by `pki rotate-ca`
    cert_check_interval_s: float = 0.0       # renewal check; 0: a tenth of the shortest lifetime (at most 60 s); <0: off
    enroll_listen: str = ""                  # HOST:PORT or unix:///PATH where hosts enroll with a token; "" off
    enroll_token_ttl_s: float = 3600.0       # an enrollment token's lifetime
    max_parallel_migrations: int = 2         # host maintenance migrates this many VMs at once
    migration_timeout_s: float = 600.0       # a migration without --timeout is aborted after this
    memory_overcommit_percent: float = 100.0  # placement: VMs' memory on a host up to this share of its memory
    mac_anti_spoofing: bool = True           # new VM networks' default vNIC profile filters spoofed MACs (no-mac-spoofing)

    @classmethod
    def load(cls, path: Path | None, **overrides: object) -> "ManagerConfig":
        cfg = cls()
        source = path or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        if source is not None:
            data = tomllib.loads(source.read_text())
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"{source}: unknown settings {sorted(unknown)}")
            cfg = replace(cfg, **data)
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
        return replace(cfg, pki_dir=Path(cfg.pki_dir), agent_timeout_s=float(cfg.agent_timeout_s),
                       host_unreachable_after_s=float(cfg.host_unreachable_after_s),
                       audit_interval_s=float(cfg.audit_interval_s),
                       db_connect_timeout_s=int(cfg.db_connect_timeout_s), db_wait_s=float(cfg.db_wait_s),
                       vm_changes_max=int(cfg.vm_changes_max),
                       agent_cert_lifetime_s=float(cfg.agent_cert_lifetime_s),
                       manager_cert_lifetime_s=float(cfg.manager_cert_lifetime_s),
                       ca_lifetime_s=float(cfg.ca_lifetime_s),
                       cert_check_interval_s=float(cfg.cert_check_interval_s),
                       session_ttl_s=float(cfg.session_ttl_s),
                       events_keep_days=int(cfg.events_keep_days),
                       enroll_token_ttl_s=float(cfg.enroll_token_ttl_s),
                       mac_anti_spoofing=bool(cfg.mac_anti_spoofing))
