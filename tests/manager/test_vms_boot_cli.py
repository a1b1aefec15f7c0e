"""`virtfleet vm|template create --kernel/--disk/--guest --domain-type`, `vm show`, `vm check-order --guest`."""
from __future__ import annotations

import json

import grpc
import psycopg
import pytest
from click.testing import CliRunner

from manager.cli.main import cli
from manager.cli.vms import boot_source, boot_text
from manager.domain.guestnames import GuestNic
from manager.store import guestnames
from virtfleet.rpc import field_violations
from virtfleet.v1 import vm_pb2


def run(manager, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--manager", manager.target, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_boot_options_make_a_boot_source_only_when_given():
    assert boot_source("", "", "", "", False) is None
    assert boot_source("", "", "", "", True) == vm_pb2.BootSource(test_guest=True)
    k = boot_source("/k", "/i", "quiet", "", False)
    assert boot_text(k, True) == "kernel /k, initrd /i, cmdline 'quiet'"
    assert boot_text(vm_pb2.BootSource(), False) == "diskless"


def test_vm_and_template_create_with_boot_options_and_show(manager):
    run(manager, "template", "create", "tg", "--guest", "--domain-type", "qemu", "--nic", "nic1=ovirtmgmt")
    out = run(manager, "template", "show", "tg")
    assert "test guest" in out and "qemu" in out
    run(manager, "vm", "create", "vm1", "--template", "tg")
    out = run(manager, "vm", "show", "vm1")
    assert "test guest" in out and "qemu" in out and "GUEST NAME" in out
    run(manager, "vm", "create", "vm2", "--nic", "nic1=ovirtmgmt", "--disk", "/images/a.qcow2")
    shown = json.loads(run(manager, "vm", "show", "vm2", "-o", "json"))
    assert shown["boot"]["disk"] == "/images/a.qcow2" and shown["domain_type"] == "auto"
    assert [(n["guest_name"], n["guest_ips"]) for n in shown["nics"]] == [("", [])]


def test_two_boot_sources_on_the_command_line_are_refused_naming_the_field(manager):
    with pytest.raises(grpc.RpcError) as err:
        CliRunner().invoke(cli, ["--manager", manager.target, "vm", "create", "vm1", "--nic", "nic1=ovirtmgmt",
                                 "--kernel", "/k", "--guest"], catch_exceptions=False)
    assert [f for f, _ in field_violations(err.value)] == ["boot.test_guest"]
    assert "vm1" not in run(manager, "vm", "list")


def test_check_order_guest_prints_both_guests_names(manager):
    run(manager, "vm", "create", "src", "--nic", "nic1=ovirtmgmt,pci=0000:00:03.0", "--nic",
        "nic2=ovirtmgmt,pci=0000:00:04.0")
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        src = conn.execute("SELECT id FROM vms WHERE name = 'src'").fetchone()[0]
        guestnames.store_seen(conn, src, {"nic1": GuestNic("eth0"), "nic2": GuestNic("eth1")})
    run(manager, "template", "create", "t1", "--from-vm", "src")
    run(manager, "vm", "create", "copy", "--template", "t1")
    with psycopg.connect(manager.app.pool.conninfo) as conn:
        copy = conn.execute("SELECT id FROM vms WHERE name = 'copy'").fetchone()[0]
        guestnames.store_seen(conn, copy, {"nic1": GuestNic("eth1"), "nic2": GuestNic("eth0")})
    out = run(manager, "vm", "check-order", "copy", "--guest", code=1)
    assert "SOURCE GUEST NAME" in out and "MISMATCH position 0 (vNIC nic1): guest_name: expected eth0, found eth1" in out
    assert "in order" in run(manager, "vm", "check-order", "copy")
