"""`virtfleet vm|template|snapshot` as an admin types them, against the in-process manager."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from manager.cli.main import cli
from manager.cli.vms import parse_nic
from virtfleet.v1 import vm_pb2

from .vmhelpers import db


def run(manager, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--manager", manager.target, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_parse_nic_kinds_and_options():
    n = parse_nic("nic1=ovirtmgmt,mac=02:00:00:00:00:01,pci=0000:00:03.0,model=e1000")
    assert (n.name, n.network, n.mac, n.pci_address, n.model) == ("nic1", "ovirtmgmt", "02:00:00:00:00:01",
                                                                  "0000:00:03.0", "e1000")
    assert parse_nic("nic2=virtual:default").virtual_network == "default"
    d = parse_nic("nic3=direct:eth1,mode=passthrough,network=vmnet,qbg=11/1193047/2")
    assert (d.direct_nic, d.mode, d.network) == ("eth1", vm_pb2.DIRECT_MODE_PASSTHROUGH, "vmnet")
    assert (d.qbg.managerid, d.qbg.typeid, d.qbg.typeidversion, d.qbg.instanceid) == (11, 1193047, 2, "")
    assert parse_nic("nic4=direct:eth2,qbh=myprofile").qbh.profileid == "myprofile"


@pytest.mark.parametrize("text", ["nic1", "=ovirtmgmt", "nic1=", "nic1=bogus:x", "nic1=ovirtmgmt,color=red",
                                  "nic1=direct:eth1,qbg=1/2", "nic1=ovirtmgmt,mac"])
def test_parse_nic_refuses_malformed_specs(text):
    with pytest.raises(click.BadParameter):
        parse_nic(text)


def test_template_vm_bulk_check_order_snapshot_from_the_command_line(manager):
    out = run(manager, "template", "create", "t1", "--nic", "nic10=ovirtmgmt", "--nic", "nic2=ovirtmgmt")
    assert "by vNIC name" in out
    out = run(manager, "vm", "create", "web", "--template", "t1", "--count", "5", "--batch-size", "2")
    assert "created 5 VMs web-1 … web-5" in out
    shown = json.loads(run(manager, "vm", "show", "web-3", "-o", "json"))
    assert [n["name"] for n in shown["nics"]] == ["nic2", "nic10"]
    assert "in order" in run(manager, "vm", "check-order", "web-3")
    assert len(json.loads(run(manager, "vm", "list", "-o", "json"))) == 5
    run(manager, "snapshot", "create", "web-1", "s1")
    assert "s1" in run(manager, "snapshot", "list", "web-1")
    out = run(manager, "vm", "create", "copy", "--snapshot", "s1")
    assert "created VM copy" in out and "nic2" in out
    run(manager, "vm", "nic", "add", "copy", "nic3=ovirtmgmt,mac=00:00:00:00:00:01")
    out = run(manager, "vm", "check-order", "copy", code=1)
    assert "MISMATCH" in out and "MAC order" in out
    assert "restored web-1" in run(manager, "snapshot", "restore", "s1")
    run(manager, "vm", "nic", "remove", "copy", "nic3")
    assert "deleted VM copy" in run(manager, "vm", "delete", "copy")
    run(manager, "template", "delete", "t1")
    assert "t1" not in run(manager, "template", "list")


def test_cli_errors_name_the_field(manager):
    result = CliRunner().invoke(cli, ["--manager", manager.target, "vm", "create", "vm1", "--nic", "nic1=ovirtmgmt",
                                      "--nic", "nic1=ovirtmgmt"])
    assert result.exit_code != 0


def test_nic_add_takes_a_mac_written_with_dashes_and_keeps_it_canonical(manager):
    run(manager, "vm", "create", "vm1", "--nic", "nic1=ovirtmgmt")
    out = run(manager, "vm", "nic", "add", "vm1", "nic9=ovirtmgmt,mac=52-54-00-00-00-01")
    assert "added vNIC nic9 to vm1 with MAC 52:54:00:00:00:01" in out
    shown = json.loads(run(manager, "vm", "show", "vm1", "-o", "json"))
    assert {n["name"]: n["mac"] for n in shown["nics"]}["nic9"] == "52:54:00:00:00:01"
    with db(manager) as conn:
        assert conn.execute("SELECT mac::text FROM vnics WHERE name = 'nic9'").fetchone()[0] == "52:54:00:00:00:01"


def test_the_vnic_order_rule_is_shown_in_words(manager):
    run(manager, "template", "create", "t1", "--nic", "nic1=ovirtmgmt,pci=0000:00:03.0")
    out = run(manager, "vm", "create", "web", "--template", "t1")
    assert "ordered by PCI address, MACs assigned in that order" in out
    assert "web from template t1: ordered by PCI address" in run(manager, "vm", "check-order", "web")
    assert "vNICs ordered by PCI address" in run(manager, "vm", "create", "bulk", "--template", "t1", "--count", "2")
