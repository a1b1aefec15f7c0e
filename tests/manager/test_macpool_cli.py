"""`virtfleet macpool …` and `virtfleet cluster set-macpool` against an in-process manager."""
from __future__ import annotations

import json

import click
import grpc
import pytest
from click.testing import CliRunner

from manager.cli.connection import show_rpc_errors
from manager.cli.macpools import parse_range_text
from manager.cli.main import cli
from manager.service import macpools


@pytest.fixture
def run(manager):
    macpools.forget_cache()
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(cli, ["--manager", manager.target, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output
    yield invoke
    macpools.forget_cache()


@pytest.mark.parametrize("text, first, last, count", [
    ("02:00:00:00:00:00..02:00:00:00:00:ff", "02:00:00:00:00:00", "02:00:00:00:00:ff", 0),
    ("02:00:00:00:00:00-02:00:00:00:00:ff", "02:00:00:00:00:00", "02:00:00:00:00:ff", 0),
    ("02:00:00:00:00:00+256", "02:00:00:00:00:00", "", 256),
])
def test_range_text(text, first, last, count):
    r = parse_range_text(text)
    assert (r.first, r.last, r.count) == (first, last, count)


@pytest.mark.parametrize("text", ["02:00:00:00:00:00", "02:00:00:00:00:00+", "02:00:00:00:00:00+x", "..02:00"])
def test_malformed_range_text_is_refused(text):
    with pytest.raises(click.BadParameter):
        parse_range_text(text)


def test_create_show_usage_list_and_delete(run):
    out = run("macpool", "create", "lab", "--range", "02:1a:4a:00:00:00..02:1a:4a:00:00:ff",
              "--range", "02:1a:4a:00:01:00+256")
    assert "created MAC pool lab: 512 addresses (02:1a:4a:00:00:00..02:1a:4a:00:01:ff)" in out
    shown = run("macpool", "show", "lab")
    assert "duplicates: forbidden" in shown and "total:      512" in shown
    usage = json.loads(run("macpool", "usage", "lab", "-o", "json"))
    assert usage == {"total": "512", "used": "0", "free": "512", "custom": "0"}
    listed = run("macpool", "list")
    assert "Default *" in listed and " lab " in listed
    run("macpool", "delete", "lab")
    assert [p["name"] for p in json.loads(run("macpool", "list", "-o", "json"))] == ["Default"]


def test_ranges_and_cluster_move(run):
    run("macpool", "create", "lab", "--range", "02:1a:4a:00:00:00+16")
    assert "32 addresses" in run("macpool", "add-range", "lab", "02:1a:4a:00:00:10", "--count", "16")
    assert "24 addresses" in run("macpool", "remove-range", "lab", "02:1a:4a:00:00:18", "02:1a:4a:00:00:1f")
    assert "cluster Default now uses MAC pool lab (0 MAC(s) moved)" in run("cluster", "set-macpool", "Default", "lab")
    assert json.loads(run("macpool", "show", "lab", "-o", "json"))["clusters"] == ["Default"]


def test_errors_show_code_and_field(manager, capsys):
    with pytest.raises(SystemExit) as exited:
        show_rpc_errors(cli.main)(["--manager", manager.target, "macpool", "create", "bad", "--range",
                                   "02:00:00:00:00:10..02:00:00:00:00:01"], prog_name="virtfleet")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "error: INVALID_ARGUMENT" in err and "field pool.ranges[0].last" in err


def test_unknown_pool_is_not_found(manager):
    with pytest.raises(grpc.RpcError) as err:
        CliRunner().invoke(cli, ["--manager", manager.target, "macpool", "usage", "nope"], catch_exceptions=False)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
