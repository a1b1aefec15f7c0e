"""Wiring of the manager's parts, shared by `virtfleet-manager` and the tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import ConnectionPool

from .agents import AgentClients, HostMonitor
from .auth.sessions import SessionBook
from .config import ManagerConfig
from .pki import CertificateAuthority, Lifetimes
from .service import macpools
from .service.admins import AdminService
from .service.audit import AuditService
from .service.certificates import CertificateService
from .service.events import EventRecorder, EventService
from .service.hostmemory import HostMemory
from .service.hosts import HostService
from .service.labels import LabelService
from .service.macpools import MacPoolService
from .service.maintenance import MaintenanceService
from .service.migrations import MigrationService
from .service.networks import NetworkService
from .service.placement import Placement
from .service.profiles import ProfileService
from .service.readmodel import ReadModel
from .service.reconcile import VmReconciler
from .service.snapshots import SnapshotService
from .service.templates import TemplateService
from .service.vm_runtime import VmRuntime
from .service.vms import VmService
from .service.vnics import VnicService
from .store import hosts as host_store
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
    admins: AdminService
    sessions: SessionBook      # unix-socket logins (manager/auth/login.py)
    events: EventRecorder       # the audit trail's writer: the API's interceptor records every call through it
    event_log: EventService     # reading and following the trail, and its daily purge
    certificates: CertificateService   # renewal, the manager's client-certificate rotation, CA rollover
    profiles: ProfileService            # vNIC profiles
    labels: LabelService        # network labels: a network and a host NIC sharing a label
    read_model: ReadModel       # hosts, networks, MAC pools in memory for the API's reads (after start_background)
    reconciler: VmReconciler    # VMs reconciled with what hosts run (at host connect, lost replies, the audit)
    placement: Placement        # the scheduler: vm start, migrations and maintenance choose hosts through it
    host_memory: HostMemory     # each host's memory, asked of its agent when it comes up (for placement)
    migrations: MigrationService       # live migration; settles what a previous life left running
    maintenance: MaintenanceService     # host maintenance: its VMs migrated away

    @classmethod
    def create(cls, cfg: ManagerConfig) -> "ManagerApp":
        pool = open_pool(cfg.dsn, connect_timeout_s=cfg.db_connect_timeout_s, wait_s=cfg.db_wait_s)
        ca = CertificateAuthority.load_or_create(Path(cfg.pki_dir), Lifetimes(
            agent_s=cfg.agent_cert_lifetime_s, manager_s=cfg.manager_cert_lifetime_s, ca_s=cfg.ca_lifetime_s))
        agents = AgentClients(ca.manager_material(), timeout_s=cfg.agent_timeout_s,
                              vm_changes_max=cfg.vm_changes_max, pins=lambda name: _host_pin(pool, name))
        events = EventRecorder(pool)
        read_model = ReadModel(pool, cfg.dsn)
        monitor = HostMonitor(pool, agents, unreachable_after_s=cfg.host_unreachable_after_s,
                              record_system=events.record_system)
        networks = NetworkService(pool, agents, monitor, record_system=events.record_system, read_model=read_model)
        hosts = HostService(pool, ca, agents, monitor, networks, token_ttl_s=cfg.enroll_token_ttl_s,
                            enroll_endpoint=cfg.enroll_listen, record_system=events.record_system,
                            read_model=read_model)
        reconciler = VmReconciler(pool, agents, monitor, record_system=events.record_system)
        audits = AuditService(pool, monitor, networks, agents, interval_s=cfg.audit_interval_s,
                              record_system=events.record_system, vm_state=reconciler.audit_verdicts)
        macpools.configure(warn_free_percent=cfg.mac_pool_warn_free_percent, record_system=events.record_system)
        host_memory = HostMemory(pool, agents, monitor, no_vm_service=reconciler.no_vm_service)
        placement = Placement(pool, monitor, memory_overcommit_percent=cfg.memory_overcommit_percent,
                              offers=host_memory.offers)
        vm_runtime = VmRuntime(pool, agents, placement, no_answer=reconciler.request)
        profiles = ProfileService(pool)
        profiles.apply_anti_spoofing_setting(cfg.mac_anti_spoofing)
        migrations = MigrationService(pool, agents, placement, default_timeout_s=cfg.migration_timeout_s,
                                      refresh=host_memory.learn,
                                      record_system=events.record_system)
        maintenance = MaintenanceService(pool, migrations, max_parallel=cfg.max_parallel_migrations,
                                         record_system=events.record_system)
        certificates = CertificateService(pool, ca, agents, record_system=events.record_system,
                                          interval_s=cfg.cert_check_interval_s or None)
        return cls(pool=pool, ca=ca, agents=agents, monitor=monitor, hosts=hosts, networks=networks, audits=audits,
                   vms=VmService(pool, vm_runtime), vm_runtime=vm_runtime, vnics=VnicService(pool, agents),
                   templates=TemplateService(pool), snapshots=SnapshotService(pool),
                   macpools=MacPoolService(pool, read_model),
                   admins=AdminService(pool, ca), sessions=SessionBook(cfg.session_ttl_s),
                   events=events, event_log=EventService(pool, events, keep_days=cfg.events_keep_days),
                   certificates=certificates, profiles=profiles,
                   labels=LabelService(pool, networks, monitor, events.record_system), read_model=read_model,
                   reconciler=reconciler, placement=placement, host_memory=host_memory,
                   migrations=migrations, maintenance=maintenance)

    def start_background(self) -> None:
        """Building the app starts nothing; this starts following every enrolled host, the periodic audit and
        certificate renewal."""
        self.events.start()
        self.read_model.start()
        self.event_log.start_daily_purge()
        self.certificates.start()
        self.reconciler.start()
        self.monitor.start_all()
        self.audits.start_periodic()
        self.migrations.start_settling()

    def close(self) -> None:
        self.migrations.stop()
        self.read_model.stop()
        self.certificates.stop()
        self.audits.stop()
        self.reconciler.stop()
        self.monitor.stop()
        self.event_log.stop()
        self.events.close()
        self.agents.close()
        self.pool.close()


def _host_pin(pool: ConnectionPool, name: str) -> host_store.HostPin | None:
    """The stored pin of a host's certificate, for the agent channels (manager/agents/clients.py)."""
    with pool.connection() as conn:
        return host_store.host_pin(conn, name)
