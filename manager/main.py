"""virtfleet-manager: the datacenter's desired state and its fleet API."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from .api.listeners import serve
from .auth.wire import login_path
from .app import ManagerApp
from .config import ManagerConfig
from .store.database import DatabaseUnreachable, open_pool

log = logging.getLogger("virtfleet.manager")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="virtfleet-manager",
        description="Run the virtfleet manager: applies database migrations, then serves the fleet API.",
    )
    p.add_argument("--config", type=Path, help="TOML settings file (default /etc/virtfleet/manager.toml if present)")
    p.add_argument("--dsn", help="PostgreSQL connection string (default: dbname=virtfleet)")
    p.add_argument("--listen", help="unix socket path of the fleet API (default /run/virtfleet/manager.sock)")
    p.add_argument("--fleet-listen", help="HOST:PORT of the remote fleet API (TLS, admin certificates); default off")
    p.add_argument("--pki-dir", type=Path, help="directory of the CA and the manager's certificate")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--enroll-listen", help="HOST:PORT or unix:///PATH where hosts enroll with a token (default off)")
    p.add_argument("--migrate-only", action="store_true", help="apply migrations and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = ManagerConfig.load(args.config, dsn=args.dsn, listen=args.listen, fleet_listen=args.fleet_listen, pki_dir=args.pki_dir,
                             log_level=args.log_level,
                             enroll_listen=args.enroll_listen)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # psycopg_pool logs two INFO lines per borrowed connection; the pool's outages are logged by FleetPool.
    logging.getLogger("psycopg.pool").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.migrate_only:
            open_pool(cfg.dsn, min_size=1, max_size=1, connect_timeout_s=cfg.db_connect_timeout_s).close()
            return 0
        app = ManagerApp.create(cfg)
    except DatabaseUnreachable as err:
        log.error("%s", err.message)   # libpq names the server; the DSN may hold a password
        return 1
    listeners = serve(app, cfg)
    app.start_background()
    log.info("manager serving the fleet API on unix://%s (log in on %s)", cfg.listen, login_path(cfg.listen))

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping")
    listeners.stop(grace=5)
    app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
