"""virtfleet-agent: serves AgentService for the host it runs on (in its network namespace).

`virtfleet-agent enroll --manager HOST:PORT --token T --ca-fingerprint SHA256` enrolls the
host first (virtfleet.enroll.enroll_with_token): the key is made here and never leaves.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from virtfleet.errors import VirtfleetError

from .config import AgentConfig
from .rpc.certificates import load_material

log = logging.getLogger("virtfleet.agent")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="virtfleet-agent",
        description="Run the virtfleet host agent. It needs the certificate the manager issued at enrollment "
        "in its PKI directory: `virtfleet-agent enroll --manager HOST:PORT --token T --ca-fingerprint SHA256` "
        "(or, offline, `virtfleet host add ... --pki-out DIR`).",
    )
    p.add_argument("--config", type=Path, help="TOML settings file (default /etc/virtfleet/agent.toml if present)")
    p.add_argument("--listen", help="HOST:PORT (default 0.0.0.0:54321) or unix:///PATH")
    p.add_argument("--pki-dir", type=Path, help="directory with ca.pem, cert.pem and key.pem")
    p.add_argument("--state-dir", type=Path, help="directory for the network journal and saved configuration")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--libvirt-uri", help="libvirt connection URI for VMs (default qemu:///system)")
    p.add_argument("--libvirt-pki-dir", help="where libvirtd's TLS files are kept (default PKI_DIR/libvirt)")
    p.add_argument("--health-socket", help="unix socket serving only grpc.health.v1 for local checks "
                   "(default /run/virtfleet/agent-health.sock; \"\" off)")
    return p.parse_args(argv)


def parse_enroll_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="virtfleet-agent enroll",
        description="Enroll this host with the token `virtfleet host add` printed: makes the key here, "
        "checks the manager's CA by its fingerprint before sending anything, sends only the CSR.",
    )
    p.add_argument("--manager", required=True, help="the manager's enrollment listener: HOST:PORT or unix:///PATH")
    p.add_argument("--token", required=True, help="the one-time token `virtfleet host add` printed")
    p.add_argument("--ca-fingerprint", required=True, help="SHA-256 of the manager's CA (`virtfleet host add` prints it)")
    p.add_argument("--config", type=Path, help="TOML settings file (default /etc/virtfleet/agent.toml if present)")
    p.add_argument("--pki-dir", type=Path, help="where to save ca.pem, cert.pem and key.pem")
    p.add_argument("--libvirt-pki-dir", help="where to save libvirtd's copy of them (default PKI_DIR/libvirt)")
    return p.parse_args(argv)


def enroll(argv: list[str]) -> int:
    import grpc

    from virtfleet.enroll import enroll_with_token
    from virtfleet.rpc import error_from_call

    from .virt import libvirt_pki

    args = parse_enroll_args(argv)
    cfg = AgentConfig.load(args.config, pki_dir=args.pki_dir, libvirt_pki_dir=args.libvirt_pki_dir)
    try:
        name = enroll_with_token(args.manager, args.token, args.ca_fingerprint, cfg.pki_dir)
    except VirtfleetError as exc:
        print(f"virtfleet-agent enroll: {exc.message}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"virtfleet-agent enroll: {error_from_call(exc, where='the manager').message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"virtfleet-agent enroll: cannot reach the manager at {args.manager}: {exc}", file=sys.stderr)
        return 1
    try:
        libvirt_pki.write(cfg.libvirt_pki, load_material(cfg.pki_dir))   # libvirtd reads it when it starts
    except OSError as exc:
        print(f"virtfleet-agent enroll: enrolled as host {name}, but libvirtd's copy of the certificate could not "
              f"be written in {cfg.libvirt_pki}: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled as host {name}; key and certificate in {cfg.pki_dir} (libvirtd's copy in {cfg.libvirt_pki})")
    return 0


def _install_libvirt_pki(cfg: AgentConfig, material) -> None:
    """libvirtd's copy of the agent's certificate, for live migration over TLS (agent.virt.libvirt_pki)."""
    from .virt import libvirt_pki

    libvirt_pki.install(cfg.libvirt_pki, material, cfg.libvirt_uri)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["enroll"]:
        return enroll(argv[1:])
    args = parse_args(argv)
    cfg = AgentConfig.load(args.config, listen=args.listen, pki_dir=args.pki_dir, state_dir=args.state_dir,
                           log_level=args.log_level, libvirt_uri=args.libvirt_uri, health_socket=args.health_socket,
                           libvirt_pki_dir=args.libvirt_pki_dir)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        material = load_material(cfg.pki_dir)
    except FileNotFoundError as exc:
        print(f"virtfleet-agent: not enrolled yet, missing {exc.filename}; enroll the host with "
              f"`virtfleet-agent enroll --manager HOST:PORT --token T --ca-fingerprint SHA256` "
              f"(`virtfleet host add NAME --address ADDR` prints them)", file=sys.stderr)
        return 2
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    _install_libvirt_pki(cfg, material)

    from pyroute2 import IPRoute

    from .net.hostnet.changes import recover_at_start
    from .net.report.capabilities import remove_probe_leftovers
    from .net.report.watch import StateWatcher
    from .rpc.network import build_health_socket, build_server

    with IPRoute() as ipr:
        left = remove_probe_leftovers(ipr)
        if left:
            log.warning("removed devices a killed feature probe left behind: %s", ", ".join(left))
        if recover_at_start(ipr, journal_path=cfg.journal_path, config_path=cfg.netconfig_path):
            log.warning("restored the network state from an unfinished change (journal %s)", cfg.journal_path)
        _restore_networks(ipr, cfg)
    watcher = StateWatcher()
    watcher.start()
    server, servicer, health = build_server(cfg, material, watcher)
    local_health = build_health_socket(cfg, health)
    server.start()
    if local_health is not None:
        local_health.start()
    log.info("agent serving on %s", cfg.listen)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping")
    health.enter_graceful_shutdown()
    server.stop(grace=2).wait()
    if local_health is not None:
        local_health.stop(grace=None).wait()
        Path(cfg.health_socket).unlink(missing_ok=True)
    watcher.stop()
    servicer.close()
    if cfg.listen.startswith("unix://"):
        Path(cfg.listen.removeprefix("unix://")).unlink(missing_ok=True)
    return 0


def _restore_networks(ipr, cfg: AgentConfig) -> None:
    """After journal recovery, before serving: the committed networks go back onto the kernel (restore-nets)."""
    from .net.hostnet.changes import restore_saved

    try:
        restore_saved(ipr, journal_path=cfg.journal_path, config_path=cfg.netconfig_path)
    except VirtfleetError as exc:
        log.error("could not restore the saved host networks: %s", exc)


if __name__ == "__main__":
    raise SystemExit(main())
