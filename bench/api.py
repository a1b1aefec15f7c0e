"""Fleet-API calls per second, with authorization and event recording on and off, over unix and TCP+TLS.

Run as `python -m bench.api` (as root, in the project's environment). It starts a
throwaway PostgreSQL cluster (fsync off, like the test suite) unless
VIRTFLEET_TEST_DSN names a server, one in-process manager, and two gRPC servers
on the same app:

- **off**: the fleet API as it was, no interceptor at all;
- **on**: every call goes through authorization (the caller's identity, the
  role `manager.auth.roles` requires) and `EventRecorder.record_call`.

Each server listens on a unix socket and on TCP+TLS (127.0.0.1, client
certificates from the manager's CA). A client in its own process (so it does
not share the server's GIL) keeps `--inflight` unary calls going for
`--seconds` per measurement: **reads** (GetNetwork, ListNetworks, ListHosts,
GetMacPool) and **writes** that record events (CreateNetwork + DeleteNetwork
pairs, SetClusterMacPool). The four servers × two mixes take turns for
`--rounds` rounds (default 5); each round's on/off ratio is taken, medians and
bests are reported. Last line: one JSON object; `overhead_unix` is the median
of 1 - on/off for reads over the unix socket, and so on.

The read model (manager/service/readmodel.py) is started, so both read through
it: the overhead compares like with like. **floor**: a third server in the same
process with the same thread pool and certificates, whose four read methods
return empty messages at once: what gRPC Python alone allows on this machine,
measured by the same client in the same rounds (reads only).

"On" is what `virtfleet-manager` serves (`manager.api.listeners.serve`): the unix
socket with its login socket (the client logs in once, then sends its session
token with every call, through `manager.client.open_channel`) and the remote
API on TCP with an admin certificate. "Off" is `build_server(resolver=None)`:
the same servicers without the interceptor, on a plain unix socket and a TLS
port with the same certificates.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from collections import deque
from dataclasses import replace
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from manager.api.listeners import serve
from manager.api.server import build_server
from manager.app import ManagerApp
from manager.client import open_channel, save_admin_material
from manager.config import ManagerConfig
from manager.lab.postgres import throwaway_database, throwaway_server
from virtfleet.enroll import make_key_and_csr
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc, macpool_pb2, macpool_pb2_grpc

READ_TARGET = 2000.0
OVERHEAD_TARGET = 0.10


# -- the servers ------------------------------------------------------------------------------------


def _admin_dir(app: ManagerApp, root: Path) -> Path:
    """An admin certificate for the TLS client, issued as `virtfleet admin add` does."""
    key, csr = make_key_and_csr("bench")
    _, cert, ca = app.admins.add(name="bench", role="admin", csr_pem=csr)
    out = root / "admin"
    save_admin_material(out, ca, cert, key)
    return out


class _EmptyFleet(fleet_pb2_grpc.FleetServiceServicer):
    """The floor's reads: an empty answer at once (no servicer, no interceptor, no database)."""

    def GetNetwork(self, request, context):
        return fleet_pb2.LogicalNetwork()

    def ListNetworks(self, request, context):
        return fleet_pb2.ListNetworksResponse()

    def ListHosts(self, request, context):
        return fleet_pb2.ListHostsResponse()


class _EmptyPools(macpool_pb2_grpc.MacPoolServiceServicer):
    def GetMacPool(self, request, context):
        return macpool_pb2.MacPool()


def _floor_server(root: Path, credentials: grpc.ServerCredentials) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="api"))
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(_EmptyFleet(), server)
    macpool_pb2_grpc.add_MacPoolServiceServicer_to_server(_EmptyPools(), server)
    server.add_insecure_port(f"unix://{root}/floor.sock")
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


# -- the client (its own process) ---------------------------------------------------------------


def _calls(mix: str, channel: grpc.Channel, tag: str):
    """An endless cycle of call factories (each returns a future) for the mix."""
    fleet = fleet_pb2_grpc.FleetServiceStub(channel)
    pools = macpool_pb2_grpc.MacPoolServiceStub(channel)
    if mix == "reads":
        cycle = [lambda: fleet.GetNetwork.future(fleet_pb2.GetNetworkRequest(name="ovirtmgmt")),
                 lambda: fleet.ListNetworks.future(fleet_pb2.ListNetworksRequest()),
                 lambda: fleet.ListHosts.future(fleet_pb2.ListHostsRequest()),
                 lambda: pools.GetMacPool.future(macpool_pb2.GetMacPoolRequest(name="Default"))]
        while True:
            yield from cycle
    n = 0
    while True:
        n += 1
        name = f"b{tag}{n:x}"[:15]
        yield lambda name=name: fleet.CreateNetwork.future(fleet_pb2.CreateNetworkRequest(
            network=fleet_pb2.LogicalNetwork(name=name, vlan=100 + n % 3000)))
        yield lambda name=name: fleet.DeleteNetwork.future(fleet_pb2.DeleteNetworkRequest(name=name))
        yield lambda: pools.SetClusterMacPool.future(macpool_pb2.SetClusterMacPoolRequest(
            cluster="Default", mac_pool="Default"))


def _measure(channel: grpc.Channel, mix: str, seconds: float, inflight: int, tag: str) -> tuple[int, float, int]:
    """Calls completed, seconds, failures. A write's Create and Delete stay in order (one pair in flight each)."""
    calls = _calls(mix, channel, tag)
    window: deque = deque()
    done = failed = 0
    started = time.perf_counter()
    end = started + seconds
    depth = inflight if mix == "reads" else 1   # writes: ordered pairs, one call at a time per stream
    while True:
        while len(window) < depth:
            window.append(next(calls)())
        try:
            window.popleft().result()
        except grpc.RpcError:
            failed += 1
        done += 1
        if time.perf_counter() >= end:
            break
    for f in window:
        try:
            f.result()
        except grpc.RpcError:
            failed += 1
        done += 1
    return done, time.perf_counter() - started, failed


def _client(conn, endpoints: dict[str, tuple[str, str | None]], seconds: float, inflight: int) -> None:
    channels = {}
    for key, (target, cert_dir) in endpoints.items():
        channels[key] = (grpc.insecure_channel(target) if key in ("off/unix", "floor/unix")
                         else open_channel(target, cert_dir=cert_dir))
        grpc.channel_ready_future(channels[key]).result(timeout=30)
    round_no = 0
    while (job := conn.recv()) is not None:
        key, mix = job
        round_no += 1
        result = _measure(channels[key], mix, 0.3, inflight, f"w{round_no}")   # warm up: connections, caches
        result = _measure(channels[key], mix, seconds, inflight, f"m{round_no}")
        conn.send(result)
    for ch in channels.values():
        ch.close()


# -- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (>= 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--inflight", type=int, default=8, help="read calls kept in flight by the client")
    args = parser.parse_args(argv)
    with throwaway_server(prefix="vfb-pg-") as pg, throwaway_database(pg, prefix="vfb_") as dsn, \
            tempfile.TemporaryDirectory(prefix="vfb-api-") as d:
        root = Path(d)
        cfg = ManagerConfig(dsn=dsn, listen=str(root / "m.sock"), pki_dir=root / "pki", audit_interval_s=0)
        app = ManagerApp.create(cfg)
        app.events.start()
        app.read_model.start()      # both servers read through it: the overhead compares like with like
        admin = str(_admin_dir(app, root))
        on = serve(app, replace(cfg, fleet_listen="127.0.0.1:0"))
        how = "manager.api.listeners.serve (authorization + events)"
        off, _ = build_server(app, resolver=None)
        off.add_insecure_port(f"unix://{root}/off.sock")
        off_port = off.add_secure_port("127.0.0.1:0", app.ca.manager_server_material(["127.0.0.1"])
                                       .server_credentials())
        off.start()
        floor, floor_port = _floor_server(root, app.ca.manager_server_material(["127.0.0.1"]).server_credentials())
        endpoints: dict[str, tuple[str, str | None]] = {
            "off/unix": (f"unix://{root}/off.sock", None), "off/tls": (f"127.0.0.1:{off_port}", admin),
            "on/unix": (f"unix://{cfg.listen}", None), "on/tls": (f"127.0.0.1:{on.fleet_port}", admin),
            "floor/unix": (f"unix://{root}/floor.sock", None), "floor/tls": (f"127.0.0.1:{floor_port}", admin)}
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        client = ctx.Process(target=_client, args=(theirs, endpoints, args.seconds, args.inflight))
        client.start()
        rates: dict[tuple[str, str], list[float]] = {}
        ratios: dict[tuple[str, str], list[float]] = {}
        failures = 0
        written_before = app.events.stats.written
        try:
            for r in range(args.rounds):
                for mix in ("reads", "writes"):
                    for transport in ("unix", "tls"):
                        order = ("off", "on") if r % 2 == 0 else ("on", "off")
                        if mix == "reads":     # the floor takes its turn first, between or last
                            order = (*order[:r % 3], "floor", *order[r % 3:])
                        got = {}
                        for state in order:
                            ours.send((f"{state}/{transport}", mix))
                            calls, seconds, failed = ours.recv()
                            failures += failed
                            got[state] = calls / seconds
                            rates.setdefault((f"{state}/{transport}", mix), []).append(got[state])
                        ratios.setdefault((transport, mix), []).append(got["on"] / got["off"])
                app.events.flush()
        finally:
            ours.send(None)
            client.join(30)
            off.stop(grace=None).wait()
            floor.stop(grace=None).wait()
            on.stop(grace=None)
            app.events.flush()
            written = app.events.stats.written - written_before
            dropped = app.events.stats.dropped
            app.close()
    _report(args, how, rates, ratios, failures, written, dropped)


def _report(args, how: str, rates: dict, ratios: dict, failures: int, written: int, dropped: int) -> None:
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"fleet-API unary calls/s, {args.rounds} interleaved rounds of {args.seconds:g} s each; "
          f"reads with {args.inflight} in flight, writes one at a time; 'on' = {how}")
    print(f"{'mix':<7} {'transport':<9} {'off median':>11} {'off best':>9} {'on median':>10} {'on best':>8} "
          f"{'overhead median':>16} {'overhead best':>14}")
    figures: dict[str, Any] = {"rounds": args.rounds, "seconds": args.seconds, "inflight": args.inflight}
    for mix in ("reads", "writes"):
        for transport in ("unix", "tls"):
            off, on = rates[(f"off/{transport}", mix)], rates[(f"on/{transport}", mix)]
            ratio = ratios[(transport, mix)]
            overhead, best = 1 - med(ratio), 1 - max(ratio)
            print(f"{mix:<7} {transport:<9} {med(off):>11.0f} {max(off):>9.0f} {med(on):>10.0f} {max(on):>8.0f} "
                  f"{overhead * 100:>15.1f}% {best * 100:>13.1f}%")
            suffix = "" if mix == "reads" else "_writes"
            figures[f"off_{transport}{suffix}_per_s"] = round(med(off), 1)
            figures[f"on_{transport}{suffix}_per_s"] = round(med(on), 1)
            figures[f"overhead_{transport}{suffix}"] = round(overhead, 4)
            figures[f"overhead_{transport}{suffix}_best"] = round(best, 4)
    for transport in ("unix", "tls"):
        floor = rates[(f"floor/{transport}", "reads")]
        figures[f"floor_{transport}_per_s"] = round(med(floor), 1)
        figures[f"floor_{transport}_best_per_s"] = round(max(floor), 1)
        figures[f"on_{transport}_best_per_s"] = round(max(rates[(f"on/{transport}", "reads")]), 1)
    print(f"floor (gRPC Python, empty servicers, same client): unix {figures['floor_unix_per_s']:.0f}/s median, "
          f"{figures['floor_unix_best_per_s']:.0f} best; tls {figures['floor_tls_per_s']:.0f}/s median, "
          f"{figures['floor_tls_best_per_s']:.0f} best; reads with both on reach "
          f"{figures['on_unix_per_s'] / figures['floor_unix_per_s']:.0%} / "
          f"{figures['on_tls_per_s'] / figures['floor_tls_per_s']:.0%} of it")
    reads_on = min(figures["on_unix_per_s"], figures["on_tls_per_s"])
    worst = max(figures["overhead_unix"], figures["overhead_tls"])
    print(f"targets: overhead <= {OVERHEAD_TARGET:.0%} (reads, median): "
          f"{'met' if worst <= OVERHEAD_TARGET else 'NOT met'} ({worst:.1%}); >= {READ_TARGET:.0f} read calls/s "
          f"with both on: {'met' if reads_on >= READ_TARGET else 'NOT met'} ({reads_on:.0f}/s, slower transport); "
          f"{written} events written, {dropped} dropped, {failures} failed calls")
    figures.update({"events_written": written, "events_dropped": dropped, "failed_calls": failures,
                    "on": how})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
