"""A private PostgreSQL cluster from the system's server binaries.

Used by the lab (its embedded database) and by the test suite (a throwaway
cluster). initdb refuses to run as root, so as root the cluster belongs to the
`postgres` user; it listens only on a unix socket in its own directory.

Only root and postgres may connect (or, run by another user, that user alone),
and only as the superuser `postgres`; two locks say so:
- the socket's directory and the cluster's root are 0700, owned by the
  cluster's owner: nobody else reaches the socket (root passes, as root does);
- `peer` authentication with an ident map (pg_hba.conf, pg_ident.conf): the
  kernel tells the server which OS user connects, and only the mapped ones get in.
Peer rather than scram: there is no password to generate, store 0600, pass in
every DSN or leak through `lab status`; the OS user is exactly the identity
wanted, and the DSNs stay `host=DIR dbname=… user=postgres`.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

PG_VERSIONS = ("15", "16", "17")


def server_bindir() -> Path:
    for v in PG_VERSIONS:
        d = Path(f"/usr/lib/postgresql/{v}/bin")
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found: install postgresql-15 (`./dev` does)")


IDENT_MAP = "virtfleet"
HBA_CONF = f"""# virtfleet private cluster: unix socket only; OS users mapped to roles in pg_ident.conf
local all all peer map={IDENT_MAP}
"""


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def allowed_os_users() -> list[str]:
    """Who may connect: root and the cluster's owner postgres; run as another user, that user."""
    if os.geteuid() == 0:
        return ["root", "postgres"]
    return [pwd.getpwuid(os.geteuid()).pw_name]


def ident_conf(os_users: list[str]) -> str:
    """Each allowed OS user may connect as the superuser `postgres`, and as no other role."""
    return "".join(f"{IDENT_MAP} {u} postgres\n" for u in os_users)


@dataclass(frozen=True)
class PrivateCluster:
    root: Path                  # holds data/, run/ and server.log

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def dsn(self, dbname: str = "virtfleet") -> str:
        return f"host={self.socket_dir} dbname={dbname} user=postgres"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        for p in (self.root, self.socket_dir):
            p.chmod(0o700)
            self._own(p)
        _check_reachable_by_postgres(self.root)
        subprocess.run(
            _as_owner([str(server_bindir() / "initdb"), "-D", str(self.data_dir), "--auth-local=peer",
                       "--auth-host=reject", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._write_conf("pg_hba.conf", HBA_CONF)
        self._write_conf("pg_ident.conf", ident_conf(allowed_os_users()))

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _write_conf(self, name: str, text: str) -> None:
        path = self.data_dir / name
        path.write_text(text)
        path.chmod(0o600)
        self._own(path)

    def start(self, *, durable: bool = True) -> None:
        opts = f"-k {self.socket_dir} -c unix_socket_permissions=0700 -c listen_addresses='' -c max_connections=200"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            _as_owner([str(server_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                       "-w", "-t", "60", "-o", opts, "start"]),
            check=True, stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_owner([str(server_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def create_database(self, dbname: str = "virtfleet") -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return self.dsn(dbname)

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _check_reachable_by_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(path)], check=False)
    if probe.returncode != 0:
        raise RuntimeError(
            f"the postgres user cannot write {path}: choose a state directory whose parents are "
            "world-searchable (e.g. under /var/lib or /tmp, not under a 0700 home)"
        )


@contextmanager
def throwaway_server(*, durable: bool = False, prefix: str = "vf-pg-") -> Iterator[str]:
    """A maintenance DSN for tests and benchmarks: $VIRTFLEET_TEST_DSN's server, else a private cluster
    made for the occasion and removed after it."""
    external = os.environ.get("VIRTFLEET_TEST_DSN")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # the cluster runs as postgres and must reach its own directory (0700) in here
    cluster = PrivateCluster(root / "cluster")
    cluster.init()
    cluster.start(durable=durable)
    try:
        yield cluster.dsn("postgres")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def throwaway_database(server_dsn: str, *, prefix: str = "vf_") -> Iterator[str]:
    """A new empty database on that server, dropped afterwards even if clients are still connected."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield conninfo.make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
