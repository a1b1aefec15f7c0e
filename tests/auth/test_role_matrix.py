"""Every fleet-API method × every role, over the unix socket with real uids and over TCP with real certificates.

One manager (real PostgreSQL, both listeners) for the module; throwaway users and
groups made with useradd/groupadd and removed afterwards; one child process per role
that calls every method with an empty request (tests/auth/rolecalls.py). A method the
role does not allow is PERMISSION_DENIED naming the role; an allowed one is anything
but PERMISSION_DENIED (an empty request is usually INVALID_ARGUMENT or NOT_FOUND).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest

from manager.api.listeners import Listeners, serve
from manager.app import ManagerApp
from manager.auth.identity import Role
from manager.auth.roles import REQUIRED_ROLE
from manager.client import add_admin, open_channel
from manager.config import ManagerConfig
from manager.lab.postgres import throwaway_database
from virtfleet.enroll import make_key_and_csr
from virtfleet.rpc import field_violations
from virtfleet.v1 import admins_pb2, admins_pb2_grpc, events_pb2, events_pb2_grpc, fleet_pb2, fleet_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"admin": Role.ADMIN, "operator": Role.OPERATOR, "auditor": Role.AUDITOR, "nobody": None}


@dataclass
class LocalUsers:
    """A user per role (and one in no group), and the three role groups, all made for this test."""
    groups: dict[str, str]          # role → group name
    users: dict[str, tuple[int, int]]   # role (or "none") → (uid, gid)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def local_users() -> Iterator[LocalUsers]:
    tag = uuid.uuid4().hex[:6]
    groups = {role: f"vft{tag}-{role}" for role in ("admin", "operator", "auditor")}
    users = {role: f"vft{tag}{role[:2]}" for role in ROLES}
    made_groups, made_users = [], []
    try:
        for g in groups.values():
            _run("groupadd", g)
            made_groups.append(g)
        for role, user in users.items():
            _run("useradd", "--no-create-home", "--no-user-group", "--shell", "/usr/sbin/nologin",
                 *(["--groups", groups[role]] if role in groups else []), user)
            made_users.append(user)
        ids = {}
        for role, user in users.items():
            out = subprocess.run(["id", "-u", user], check=True, capture_output=True, text=True).stdout
            gid = subprocess.run(["id", "-g", user], check=True, capture_output=True, text=True).stdout
            ids[role] = (int(out), int(gid))
        yield LocalUsers(groups, ids)
    finally:
        for u in made_users:
            subprocess.run(["userdel", u], capture_output=True)
        for g in made_groups:
            subprocess.run(["groupdel", g], capture_output=True)


@dataclass
class AuthzManager:
    app: ManagerApp
    cfg: ManagerConfig
    listeners: Listeners
    root: Path

    @property
    def unix_target(self) -> str:
        return f"unix://{self.cfg.listen}"

    @property
    def tcp_target(self) -> str:
        return f"127.0.0.1:{self.listeners.fleet_port}"


@pytest.fixture(scope="module")
def authz_db(pg_server_dsn: str) -> Iterator[str]:
    with throwaway_database(pg_server_dsn, prefix="vft_") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def authz_manager(authz_db: str, local_users: LocalUsers) -> Iterator[AuthzManager]:
    with tempfile.TemporaryDirectory(prefix="vft-authz-") as d:
        root = Path(d)
        root.chmod(0o755)          # the throwaway users must reach the sockets in it
        cfg = ManagerConfig(dsn=authz_db, listen=str(root / "manager.sock"), pki_dir=root / "pki",
                            agent_timeout_s=5.0, audit_interval_s=0, fleet_listen="127.0.0.1:0",
                            admin_group=local_users.groups["admin"], operator_group=local_users.groups["operator"],
                            auditor_group=local_users.groups["auditor"])
        app = ManagerApp.create(cfg)
        listeners = serve(app, cfg, max_workers=8)
        try:
            yield AuthzManager(app, cfg, listeners, root)
        finally:
            listeners.stop(grace=None)
            app.close()


def _calls(target: str, *, uid_gid: tuple[int, int] | None = None, cert_dir: Path | None = None) -> dict:
    cmd = [sys.executable, "-m", "tests.auth.rolecalls", target]
    if uid_gid:
        cmd += ["--uid", str(uid_gid[0]), "--gid", str(uid_gid[1])]
    if cert_dir:
        cmd += ["--cert-dir", str(cert_dir)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return {m: tuple(v) for m, v in json.loads(done.stdout).items()}


def _table_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _assert_matrix(outcomes: dict, role: Role | None, who: str) -> None:
    assert set(outcomes) == set(REQUIRED_ROLE)
    for method, needed in REQUIRED_ROLE.items():
        code, details = outcomes[method]
        if role is not None and role.allows(needed):
            assert code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"), (who, method, code, details)
        else:
            assert code == "PERMISSION_DENIED", (who, method, code, details)
            assert f"needs role {needed.value}" in details, (who, method, details)
            assert ("has no role" if role is None else f"has {role.value}") in details, (who, method, details)


@pytest.mark.parametrize("role", list(ROLES))
def test_every_method_over_the_unix_socket_answers_by_the_callers_groups(authz_manager, local_users, role):
    before = _table_counts(authz_manager.cfg.dsn)
    outcomes = _calls(authz_manager.unix_target, uid_gid=local_users.users[role])
    _assert_matrix(outcomes, ROLES[role], f"unix {role}")
    if ROLES[role] is not Role.ADMIN:
        assert _table_counts(authz_manager.cfg.dsn) == before
    uid = local_users.users[role][0]
    if ROLES[role] is not Role.ADMIN:    # the refusal names the caller by uid and user name
        code, details = outcomes["/virtfleet.v1.AdminService/AddAdmin"]
        assert f"uid {uid} (" in details


def test_root_is_an_admin_on_the_unix_socket(authz_manager):
    _assert_matrix(_calls(authz_manager.unix_target), Role.ADMIN, "root")


@pytest.fixture(scope="module")
def admin_certs(authz_manager) -> dict[str, Path]:
    dirs = {}
    with open_channel(authz_manager.unix_target) as channel:
        for role in ("admin", "operator", "auditor"):
            dirs[role] = authz_manager.root / "certs" / role
            add_admin(channel, name=f"matrix-{role}", role=role, out_dir=dirs[role])
    return dirs


@pytest.mark.parametrize("role", ["admin", "operator", "auditor"])
def test_every_method_over_tcp_answers_by_the_certificates_role(authz_manager, admin_certs, role):
    before = _table_counts(authz_manager.cfg.dsn)
    outcomes = _calls(authz_manager.tcp_target, cert_dir=admin_certs[role])
    _assert_matrix(outcomes, ROLES[role], f"tcp {role}")
    if role == "auditor":
        assert _table_counts(authz_manager.cfg.dsn) == before
    assert {(mode & 0o777) for mode in (os.stat(p).st_mode for p in admin_certs[role].iterdir())} == {0o600}


def test_a_hosts_or_the_managers_own_certificate_is_no_admin(authz_manager, tmp_path):
    """Signed by the same CA, so TLS lets the manager's through: the admins table refuses it."""
    key, csr = make_key_and_csr("certhost")
    with open_channel(authz_manager.unix_target) as channel:
        reply = fleet_pb2_grpc.FleetServiceStub(channel).EnrollHost(
            fleet_pb2.EnrollHostRequest(name="certhost", address="192.0.2.77", csr_pem=csr,
                                            endpoint=f"unix://{tmp_path}/nowhere.sock"), timeout=30)
    from manager.client import save_admin_material
    save_admin_material(tmp_path / "host", reply.ca_certificate_pem, reply.certificate_pem, key)
    mine = authz_manager.app.ca.manager_material()
    save_admin_material(tmp_path / "manager", mine.ca_pem, mine.cert_pem, mine.key_pem)
    for who in ("host", "manager"):
        with open_channel(authz_manager.tcp_target, cert_dir=tmp_path / who) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                fleet_pb2_grpc.FleetServiceStub(channel).ListHosts(fleet_pb2.ListHostsRequest(), timeout=30)
        if who == "host" and refused.value.code() == grpc.StatusCode.UNAVAILABLE:
            continue     # a server-only certificate (serverAuth) does not even pass the TLS handshake
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, who
        assert "not an admin's certificate" in refused.value.details()


def _admin_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT name, role, revoked_at FROM admins ORDER BY id").fetchall()


def test_a_revoked_certificate_is_refused_on_its_open_channel_from_the_next_call(authz_manager, tmp_path):
    with open_channel(authz_manager.unix_target) as root_channel:
        add_admin(root_channel, name="leaving", role="operator", out_dir=tmp_path / "leaving")
        with open_channel(authz_manager.tcp_target, cert_dir=tmp_path / "leaving") as channel:
            hosts = fleet_pb2_grpc.FleetServiceStub(channel)
            hosts.ListHosts(fleet_pb2.ListHostsRequest(), timeout=30)
            admins = admins_pb2_grpc.AdminServiceStub(root_channel)
            admins.RevokeAdmin(admins_pb2.RevokeAdminRequest(name="leaving"), timeout=30)
            with pytest.raises(grpc.RpcError) as refused:
                hosts.ListHosts(fleet_pb2.ListHostsRequest(), timeout=30)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "revoked" in refused.value.details()


def test_a_revoked_admins_open_follow_stream_is_closed(authz_manager, tmp_path):
    """`events --follow` holds a stream open; revoking its admin ends it (the stream rechecks every second)."""
    with open_channel(authz_manager.unix_target) as root_channel:
        add_admin(root_channel, name="watcher", role="auditor", out_dir=tmp_path / "watcher")
        with open_channel(authz_manager.tcp_target, cert_dir=tmp_path / "watcher") as channel:
            stream = events_pb2_grpc.EventServiceStub(channel).FollowEvents(events_pb2.FollowEventsRequest(),
                                                                            timeout=60)
            stream.initial_metadata()                      # let in: the stream is open
            admins_pb2_grpc.AdminServiceStub(root_channel).RevokeAdmin(
                admins_pb2.RevokeAdminRequest(name="watcher"), timeout=30)
            with pytest.raises(grpc.RpcError) as ended:
                for _ in stream:
                    pass
    assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED   # not the 60 s deadline
    assert "revoked" in ended.value.details()


def test_a_role_change_holds_from_the_next_call(authz_manager, tmp_path):
    with open_channel(authz_manager.unix_target) as root_channel:
        admins = admins_pb2_grpc.AdminServiceStub(root_channel)
        add_admin(root_channel, name="promoted", role="auditor", out_dir=tmp_path / "p")
        with open_channel(authz_manager.tcp_target, cert_dir=tmp_path / "p") as channel:
            remote = admins_pb2_grpc.AdminServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                remote.ListAdmins(admins_pb2.ListAdminsRequest(), timeout=30)
            assert "needs role admin; admin promoted has auditor" in refused.value.details()
            admins.SetAdminRole(admins_pb2.SetAdminRoleRequest(name="promoted", role="admin"), timeout=30)
            listed = remote.ListAdmins(admins_pb2.ListAdminsRequest(), timeout=30).admins
    mine = [a for a in listed if a.name == "promoted"]
    assert [(a.role, a.created_by, a.HasField("revoked_at")) for a in mine] == [("admin", "root", False)]


@pytest.mark.parametrize("request_fields, code, field", [
    ({"name": "bad-csr", "role": "operator", "csr_pem": b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"},
     grpc.StatusCode.INVALID_ARGUMENT, "csr_pem"),
    ({"name": "bad-role", "role": "superuser"}, grpc.StatusCode.INVALID_ARGUMENT, "role"),
    ({"name": "Bad_Name", "role": "auditor"}, grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"name": "virtfleet-manager", "role": "auditor"}, grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"name": "matrix-admin", "role": "auditor"}, grpc.StatusCode.ALREADY_EXISTS, None),
])
def test_bad_admin_input_is_a_clear_error_and_changes_nothing(authz_manager, admin_certs, request_fields, code,
                                                               field):
    fields = {"csr_pem": make_key_and_csr(request_fields["name"].lower())[1], **request_fields}
    before = _admin_rows(authz_manager.cfg.dsn)
    with open_channel(authz_manager.unix_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            admins_pb2_grpc.AdminServiceStub(channel).AddAdmin(admins_pb2.AddAdminRequest(**fields), timeout=30)
    assert err.value.code() == code, err.value.details()
    if field:
        assert [f for f, _ in field_violations(err.value)] == [field]
    assert _admin_rows(authz_manager.cfg.dsn) == before


def test_an_admin_may_not_take_a_hosts_name(authz_manager):
    _, csr = make_key_and_csr("certhost2")
    with open_channel(authz_manager.unix_target) as channel:
        fleet_pb2_grpc.FleetServiceStub(channel).EnrollHost(
            fleet_pb2.EnrollHostRequest(name="hostname1", address="192.0.2.78", csr_pem=csr,
                                        endpoint="unix:///nonexistent/agent.sock"), timeout=30)
        with pytest.raises(grpc.RpcError) as err:
            admins_pb2_grpc.AdminServiceStub(channel).AddAdmin(
                admins_pb2.AddAdminRequest(name="hostname1", role="auditor", csr_pem=csr), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "host's name" in err.value.details()


@pytest.mark.parametrize("call", ["RevokeAdmin", "SetAdminRole"])
def test_an_unknown_admin_is_not_found(authz_manager, call):
    before = _admin_rows(authz_manager.cfg.dsn)
    with open_channel(authz_manager.unix_target) as channel:
        stub = admins_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            if call == "RevokeAdmin":
                stub.RevokeAdmin(admins_pb2.RevokeAdminRequest(name="nosuchadmin"), timeout=30)
            else:
                stub.SetAdminRole(admins_pb2.SetAdminRoleRequest(name="nosuchadmin", role="auditor"), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nosuchadmin" in err.value.details()
    assert _admin_rows(authz_manager.cfg.dsn) == before


def test_a_call_without_a_session_is_told_where_to_log_in(authz_manager):
    with grpc.insecure_channel(authz_manager.unix_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            fleet_pb2_grpc.FleetServiceStub(channel).ListHosts(fleet_pb2.ListHostsRequest(), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert f"{authz_manager.cfg.listen}.login" in err.value.details()
        assert not err.value.initial_metadata()           # refused: no headers, trailers only …
        with pytest.raises(grpc.RpcError) as err:
            fleet_pb2_grpc.FleetServiceStub(channel).ListHosts(
                fleet_pb2.ListHostsRequest(), metadata=[("x-request-id", "ask-42")], timeout=30)
        assert ("x-request-id", "ask-42") in err.value.trailing_metadata()   # … and the request id among them
        with pytest.raises(grpc.RpcError) as err:
            fleet_pb2_grpc.FleetServiceStub(channel).ListHosts(
                fleet_pb2.ListHostsRequest(), metadata=[("x-virtfleet-session", "forged")], timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_request_id_comes_back_the_clients_or_a_new_one(authz_manager):
    with open_channel(authz_manager.unix_target) as channel:
        stub = fleet_pb2_grpc.FleetServiceStub(channel)
        _, call = stub.ListHosts.with_call(fleet_pb2.ListHostsRequest(), metadata=[("x-request-id", "abc-123")],
                                           timeout=30)
        assert ("x-request-id", "abc-123") in call.trailing_metadata()
        _, call = stub.ListHosts.with_call(fleet_pb2.ListHostsRequest(), metadata=[("x-request-id", "no way!")],
                                           timeout=30)
        sent_back = dict(call.trailing_metadata())["x-request-id"]
        assert sent_back != "no way!" and len(sent_back) == 32
        with pytest.raises(grpc.RpcError) as err:            # a servicer's error keeps it too
            stub.GetNetwork(fleet_pb2.GetNetworkRequest(name="nosuch"), metadata=[("x-request-id", "nf-1")],
                            timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert ("x-request-id", "nf-1") in err.value.trailing_metadata()


def test_the_sockets_are_open_to_everyone_because_each_call_is_checked(authz_manager):
    for path in (authz_manager.cfg.listen, authz_manager.cfg.listen + ".login"):
        assert os.stat(path).st_mode & 0o777 == 0o666
