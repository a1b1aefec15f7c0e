"""Wiring of the manager's parts, shared by `virtfleet-manager` and the tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import ConnectionPool

from .agents import AgentClients, HostMonitor
from .config import ManagerConfig
from .pki import CertificateAuthority, Lifetimes
from .service.audit import AuditService
from .service.certificates import CertificateService
from .service import macpools
from .service.hosts import HostService
from .service.macpools import MacPoolService
from .service.networks import NetworkService
from .service.snapshots import SnapshotService
from .service.templates import TemplateService
from .service.vm_runtime import VmRuntime
from .service.vms import VmService
from .service.vnics import VnicService
from .store.database import open_pool


@dataclass
class ManagerApp:
    pool: ConnectionPool
    ca: CertificateAuthority
    agents: AgentClients
    monitor: HostMonitor
    hosts: HostService
    networks: NetworkService
    macpools: MacPoolService
    audits: AuditService
    vms: VmService
    vm_runtime: VmRuntime
    vnics: VnicService
    templates: TemplateService
    snapshots: SnapshotService
    certificates: CertificateService

    @classmethod
    def create(cls, cfg: ManagerConfig) -> "ManagerApp":
        pool = open_pool(cfg.dsn, connect_timeout_s=cfg.db_connect_timeout_s, wait_s=cfg.db_wait_s)
        ca = CertificateAuthority.load_or_create(Path(cfg.pki_dir), Lifetimes(
            agent_s=cfg.agent_cert_lifetime_s, manager_s=cfg.manager_cert_lifetime_s, ca_s=cfg.ca_lifetime_s))
        agents = AgentClients(ca.manager_material(), timeout_s=cfg.agent_timeout_s,
                              vm_changes_max=cfg.vm_changes_max)
        monitor = HostMonitor(pool, agents, unreachable_after_s=cfg.host_unreachable_after_s)
        networks = NetworkService(pool, agents, monitor)
        hosts = HostService(pool, ca, agents, monitor, networks)
        audits = AuditService(pool, monitor, networks, agents, interval_s=cfg.audit_interval_s)
        macpools.configure(warn_free_percent=cfg.mac_pool_warn_free_percent)
        vm_runtime = VmRuntime(pool, agents)
        certificates = CertificateService(pool, ca, agents, interval_s=cfg.cert_check_interval_s or None)
        return cls(certificates=certificates, pool=pool, ca=ca, agents=agents, monitor=monitor, hosts=hosts, networks=networks, audits=audits,
                   vms=VmService(pool, vm_runtime), vm_runtime=vm_runtime, vnics=VnicService(pool, agents),
                   templates=TemplateService(pool), snapshots=SnapshotService(pool), macpools=MacPoolService(pool))

    def start_background(self) -> None:
        """Building the app starts nothing; this starts following every enrolled host, the periodic audit and
        certificate renewal."""
        self.certificates.start()
        self.monitor.start_all()
        self.audits.start_periodic()

    def close(self) -> None:
        self.certificates.stop()
        self.audits.stop()
        self.monitor.stop()
        self.agents.close()
        self.pool.close()
