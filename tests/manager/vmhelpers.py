"""Shared steps of the VM API tests: requests as an admin types them, and what the database holds."""
from __future__ import annotations

import psycopg

from manager.cli.vms import parse_nic
from virtfleet.v1 import vms_pb2, vms_pb2_grpc


def api(manager) -> vms_pb2_grpc.VmServiceStub:
    return vms_pb2_grpc.VmServiceStub(manager.channel)


def nics(*specs: str) -> list[vms_pb2.Nic]:
    return [parse_nic(s) for s in specs]


def create_vm(manager, name: str, *specs: str, **kw) -> vms_pb2.VirtualMachine:
    return api(manager).CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(name=name, nics=nics(*specs), **kw))


def create_template(manager, name: str, *specs: str, **kw) -> vms_pb2.Template:
    return api(manager).CreateTemplate(vms_pb2.CreateTemplateRequest(name=name, nics=nics(*specs), **kw))


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def db(manager) -> psycopg.Connection:
    return psycopg.connect(manager.app.pool.conninfo, autocommit=True)


def leased(dsn_or_manager) -> int:
    """MACs in use in the database (A's leases), whatever holds them."""
    dsn = dsn_or_manager if isinstance(dsn_or_manager, str) else dsn_or_manager.app.pool.conninfo
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM mac_leases").fetchone()[0]


def vm_rows(dsn_or_manager) -> tuple[int, int]:
    """(VMs, vNICs) in the database."""
    dsn = dsn_or_manager if isinstance(dsn_or_manager, str) else dsn_or_manager.app.pool.conninfo
    with psycopg.connect(dsn) as conn:
        return (conn.execute("SELECT count(*) FROM vms").fetchone()[0],
                conn.execute("SELECT count(*) FROM vnics").fetchone()[0])


def without_network_filters(manager) -> None:
    """Every profile of the Default datacenter filters nothing: for agents on libvirt's test driver, which has no
    nwfilter driver (an agent refuses a filter its libvirt lacks). Filters themselves are tested on real
    libvirtds: tests/integration/test_vnic_profiles_lab.py and the in-guest tests."""
    with db(manager) as conn:
        conn.execute("UPDATE vnic_profiles SET filter_name = NULL, filter_parameters = '[]'")
