"""The private PostgreSQL cluster (the lab's database, the tests' throwaway server) admits root and postgres only.

Any other local user reaching the socket would be a superuser bypassing the
fleet API's 0600 socket; so the socket's directory is private and the server
authenticates by peer credentials through an ident map.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from manager.lab.postgres import PrivateCluster, allowed_os_users, ident_conf, server_bindir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="acting as other local users needs root")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    root = Path(tempfile.mkdtemp(prefix="vft-pgauth-"))
    root.chmod(0o755)
    made = PrivateCluster(root / "cluster")
    made.init()
    made.start(durable=False)
    try:
        yield made
    finally:
        made.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def psql_as(os_user: str, dsn: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", os_user, "--", str(server_bindir() / "psql"), dsn, "-Atc", "SELECT 1"],
                          capture_output=True, text=True, timeout=60)


def test_root_connects_with_the_dsn_the_code_builds(cluster):
    with psycopg.connect(cluster.dsn("postgres")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_the_postgres_user_connects(cluster):
    done = psql_as("postgres", cluster.dsn("postgres"))
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr


def test_another_local_user_cannot_reach_the_socket(cluster):
    done = psql_as("nobody", cluster.dsn("postgres"))
    assert done.returncode != 0 and "Permission denied" in done.stderr, done.stderr


def test_the_socket_directory_and_the_cluster_are_private(cluster):
    owner = pwd.getpwnam("postgres").pw_uid
    for path in (cluster.root, cluster.socket_dir, cluster.data_dir):
        st = path.stat()
        assert (oct(st.st_mode & 0o777), st.st_uid) == (oct(0o700), owner), path


def test_peer_authentication_maps_root_to_postgres_and_to_no_other_role(cluster):
    """Past the directory, the server itself refuses: trust would admit root as any role."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("CREATE ROLE vft_other LOGIN")
        rules = conn.execute("SELECT type, auth_method, options FROM pg_hba_file_rules").fetchall()
    assert rules == [("local", "peer", ["map=virtfleet"])]
    with pytest.raises(psycopg.OperationalError, match="Peer authentication failed"):
        psycopg.connect(cluster.dsn("postgres").replace("user=postgres", "user=vft_other"))


def test_ident_map_lists_who_may_connect_as_postgres():
    assert allowed_os_users() == ["root", "postgres"]
    assert ident_conf(["root", "postgres"]) == "virtfleet root postgres\nvirtfleet postgres postgres\n"
