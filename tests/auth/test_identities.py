"""The pure parts of who-is-who: roles from groups, request ids, where the CLI finds the manager."""
from __future__ import annotations

from pathlib import Path

import click
import pytest

from manager.auth.context import denial
from manager.auth.identity import Identity, Kind, Role
from manager.auth.sessions import SessionBook
from manager.auth.unixusers import RoleGroups, role_of
from manager.auth.wire import login_path, sane_request_id
from manager.cli.connection import resolve_endpoint

GROUPS = RoleGroups(admin="g-admin", operator="g-op", auditor="g-aud")


@pytest.mark.parametrize("uid, groups, role", [
    (0, set(), Role.ADMIN),
    (1000, {"g-admin"}, Role.ADMIN),
    (1000, {"g-op"}, Role.OPERATOR),
    (1000, {"g-aud"}, Role.AUDITOR),
    (1000, {"g-aud", "g-op"}, Role.OPERATOR),      # the highest group wins
    (1000, {"wheel", "virtfleet-admin"}, None),     # the configured names count, not the defaults
])
def test_a_local_users_role_comes_from_its_groups(uid, groups, role):
    assert role_of(uid, groups, GROUPS) is role


def test_a_refusal_names_the_role_needed_and_what_the_caller_has():
    bob = Identity("bob", Kind.UNIX, Role.AUDITOR, peer="uid=1001 pid=42")
    assert denial(bob, Role.OPERATOR) == "needs role operator; uid 1001 (bob) has auditor"
    nobody = Identity("eve", Kind.UNIX, None, peer="uid=1002 pid=43")
    assert denial(nobody, Role.AUDITOR) == "needs role auditor; uid 1002 (eve) has no role"
    assert denial(Identity("carol", Kind.CERT, Role.OPERATOR), Role.ADMIN) == "needs role admin; admin carol has operator"


@pytest.mark.parametrize("value, sane", [
    ("abc-123_x.y", True), ("a" * 64, True), ("a" * 65, False), ("", False), ("no way!", False),
    ("../etc", False), (b"bytes", False), (None, False),
])
def test_only_a_sane_client_request_id_is_kept(value, sane):
    assert sane_request_id(value) == (value if sane else None)


def test_the_login_socket_is_beside_the_fleet_socket():
    assert login_path("unix:///run/virtfleet/manager.sock") == "/run/virtfleet/manager.sock.login"


def test_a_session_token_is_random_and_bound_to_its_identity():
    book = SessionBook(ttl_s=600)
    alice = Identity("alice", Kind.UNIX, Role.OPERATOR)
    t1, t2 = book.mint(alice), book.mint(alice)
    assert t1 != t2 and len(t1) >= 43
    assert book.lookup(t1) == alice and book.lookup("forged") is None
    assert SessionBook(ttl_s=0).lookup(SessionBook(ttl_s=0).mint(alice)) is None


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_flags_beat_env_beat_the_config_file(tmp_path):
    cfg = _write(tmp_path / "cli.toml", 'manager = "file.example:54322"\ncert_dir = "/file/certs"\n')
    env = {"VIRTFLEET_MANAGER": "env.example:54322"}
    assert resolve_endpoint("flag.example:1", None, env=env, config=cfg).target == "flag.example:1"
    assert resolve_endpoint(None, None, env=env, config=cfg).target == "env.example:54322"
    got = resolve_endpoint(None, None, env={}, config=cfg)
    assert (got.target, got.cert_dir) == ("file.example:54322", Path("/file/certs"))
    assert resolve_endpoint(None, "/flag/certs", env={"VIRTFLEET_CERT_DIR": "/env"}, config=cfg).cert_dir == \
        Path("/flag/certs")
    assert resolve_endpoint("/run/x.sock", None, env={}, config=cfg).target == "unix:///run/x.sock"


def test_an_unknown_key_in_the_config_file_is_refused_by_name(tmp_path):
    cfg = _write(tmp_path / "cli.toml", 'manager = "m:1"\ncertdir = "/typo"\n')
    with pytest.raises(click.ClickException, match="unknown settings certdir"):
        resolve_endpoint(None, None, env={}, config=cfg)
