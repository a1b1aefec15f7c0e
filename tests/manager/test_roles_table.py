"""Every fleet-API method has a role in the one table: a new RPC cannot ship undecided."""
from __future__ import annotations

import importlib
import pkgutil

import virtfleet.v1
from manager.auth.identity import Role
from manager.auth.roles import NOT_FLEET_API, READS, REQUIRED_ROLE, required_role

AGENT_SIDE = {"virtfleet.v1.AgentService", "virtfleet.v1.VmAgentService"}   # served by agents, not the manager


def fleet_methods() -> set[str]:
    methods = set()
    for info in pkgutil.iter_modules(virtfleet.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"virtfleet.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in NOT_FLEET_API:
                continue
            if service.full_name not in AGENT_SIDE and not service.full_name.startswith("virtfleet.v1.Agent"):
                methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return methods


def test_every_fleet_method_has_a_role():
    missing = sorted(fleet_methods() - REQUIRED_ROLE.keys())
    assert not missing, f"add these to manager/auth/roles.py REQUIRED_ROLE: {missing}"


def test_the_table_names_no_method_that_does_not_exist():
    extra = sorted(m for m in REQUIRED_ROLE if m.startswith("/virtfleet.") and m not in fleet_methods())
    assert not extra


def test_roles_nest_and_unknown_methods_are_nobodys():
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.AUDITOR)
    assert not Role.AUDITOR.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)
    assert required_role("/virtfleet.v1.FleetService/NoSuchThing") is None


def test_operators_do_not_touch_hosts_networks_or_pools_and_reads_are_auditors():
    for method, role in REQUIRED_ROLE.items():
        if any(word in method for word in ("Host", "Network", "MacPool", "Admin", "Pki")):
            assert role is not Role.OPERATOR or "VmService" in method, method
    assert "/virtfleet.v1.FleetService/ListHosts" in READS
    assert "/virtfleet.v1.FleetService/CreateNetwork" not in READS
