"""Benchmark: 500 bridged networks through the agent's setupNetworks vs `ip -batch` and one `ip` per step.

Each run gets a fresh throwaway namespace holding N veth "NICs" (their peers
in a second namespace, so the agent counts them as NICs) and builds, for each,
a bridge named after the network with the NIC as its port, up:

- agent: setupNetworks as the agent runs it — validate, read state, plan,
  journal, apply through one netlink socket inside the namespace, read back
  and verify with netcompare, save the configuration; timed inside an agent
  process already running in the namespace (kernel capabilities probed
  beforehand, as a serving agent has them cached);
- ip_batch: the same kernel changes as one `ip -batch` process;
- shellout: the same changes as one `ip` process per change.

Run as `python -m bench.hostnet [--networks N] [--rounds R]`: the three methods take turns in each round
(median and best reported); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "vfbench-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostnet")
    parser.add_argument("--networks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the three methods (>= 5)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # the agent run, in the namespace
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        print(json.dumps(_agent_inside(args.networks, args.state_dir)))
        return 0

    n = args.networks
    runs = {"agent": _run_agent, "ip_batch": _run_ip_batch, "shellout": _run_shellout}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    ratios: list[float] = []
    for _ in range(args.rounds):  # one of each per round, so a load burst hits all three alike
        for name, run in runs.items():
            seconds[name].append(_measure(n, run)["seconds"])
        ratios.append(seconds["agent"][-1] / seconds["ip_batch"][-1])
    med = {name: statistics.median(values) for name, values in seconds.items()}
    best = {name: min(values) for name, values in seconds.items()}
    result = {
        "networks": n,
        "rounds": args.rounds,
        "agent_s": round(med["agent"], 4),
        "agent_best_s": round(best["agent"], 4),
        "ip_batch_s": round(med["ip_batch"], 4),
        "ip_batch_best_s": round(best["ip_batch"], 4),
        "shellout_s": round(med["shellout"], 4),
        "ratio_vs_batch": round(statistics.median(ratios), 2),
        "ratio_vs_batch_best": round(min(ratios), 2),
        "speedup_vs_shellout": round(med["shellout"] / med["agent"], 2),
    }
    print(f"{n} bridged networks (bridge + veth NIC each), kernel changes per network: add bridge, enslave NIC, "
          f"bridge up; {args.rounds} interleaved rounds")
    print(f"{'method':<12} {'median s':>9} {'best s':>9} {'per network':>13}")
    for name in runs:
        print(f"{name:<12} {med[name]:>9.3f} {best[name]:>9.3f} {med[name] / n * 1000:>10.2f} ms")
    print(f"agent / ip -batch per round: median {result['ratio_vs_batch']}x, best {result['ratio_vs_batch_best']}x")
    print(f"targets: agent <= 2x ip -batch (median {result['ratio_vs_batch']}x), >= 5x faster than one ip per step "
          f"(median {result['speedup_vs_shellout']}x), <= 3 s (median {result['agent_s']} s)")
    print(json.dumps(result))
    return 0


# -- one measurement ------------------------------------------------------------------------------


def _measure(n: int, run) -> dict:
    with _host(n) as ns:
        figure = run(ns, n)
        figure["bridges"] = _bridges_with_their_nic(ns, n)
        if figure["bridges"] != n:
            raise SystemExit(f"{run.__name__}: only {figure['bridges']} of {n} bridges were built right")
    return figure


@contextmanager
def _host(n: int) -> Iterator[str]:
    """A namespace with N up veth NICs nic0..nicN-1 whose peers sit in a 'switch' namespace."""
    ns, switch = PREFIX + secrets.token_hex(3), PREFIX + secrets.token_hex(3)
    for name in (ns, switch):
        _ip("netns", "add", name)
    try:
        lines = [f"link add nic{i} type veth peer name p{i} netns {switch}" for i in range(n)]
        lines += [f"link set nic{i} up" for i in range(n)]
        _ip("-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")
        yield ns
    finally:
        for name in (ns, switch):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _bridges_with_their_nic(ns: str, n: int) -> int:
    links = json.loads(_ip("-n", ns, "-j", "link", "show"))
    masters = {link["ifname"]: link.get("master") for link in links}
    bridges = {link["ifname"] for link in links if "UP" in link["flags"] and link["ifname"].startswith("net")}
    return sum(1 for i in range(n) if f"net{i}" in bridges and masters.get(f"nic{i}") == f"net{i}")


def _commands(ns: str, n: int) -> list[list[str]]:
    """The agent's own steps for this change, as ip arguments (same MAC, MTU and STP as it sets)."""
    macs = {link["ifname"]: link["address"] for link in json.loads(_ip("-n", ns, "-j", "link", "show"))}
    commands = []
    for i in range(n):
        commands.append(["link", "add", f"net{i}", "address", macs[f"nic{i}"], "mtu", "1500", "type", "bridge", "stp_state", "0"])
        commands.append(["link", "set", f"nic{i}", "master", f"net{i}"])
        commands.append(["link", "set", f"net{i}", "up"])
    return commands


def _run_ip_batch(ns: str, n: int) -> dict:
    script = "\n".join(" ".join(c) for c in _commands(ns, n)) + "\n"
    start = time.perf_counter()
    _ip("-n", ns, "-batch", "-", stdin=script)
    return {"seconds": time.perf_counter() - start}


def _run_shellout(ns: str, n: int) -> dict:
    commands = _commands(ns, n)
    start = time.perf_counter()
    for command in commands:
        _ip("-n", ns, *command)
    return {"seconds": time.perf_counter() - start}


def _run_agent(ns: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="vfbench-state-") as state_dir:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "bench.hostnet", "--inside", "--networks", str(n),
             "--state-dir", state_dir],
            capture_output=True, text=True, check=False,
        )
    if out.returncode != 0:
        raise SystemExit(f"agent run failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agent_inside(n: int, state_dir: Path) -> dict:
    """Runs in the namespace, as the agent does: one netlink socket, the agent's own setupNetworks service."""
    import threading

    from pyroute2 import IPRoute

    from agent.net.hostnet.changes import HostNetworks
    from agent.net.report.capabilities import kernel_features
    from agent.net.report.state import read_state
    from virtfleet.v1 import hostnet_pb2

    request = hostnet_pb2.SetupNetworksRequest(
        networks=[hostnet_pb2.NetworkAttachment(network=f"net{i}", nic=f"nic{i}", bridged=True) for i in range(n)]
    )
    with IPRoute() as ipr:
        kernel_features(ipr)  # a serving agent has them cached since its first GetCapabilities
        networks = HostNetworks(ipr, threading.Lock(), journal_path=state_dir / "netjournal.json",
                                config_path=state_dir / "netconfig.json", features=lambda: kernel_features(ipr))
        start = time.perf_counter()
        reply = networks.setup(request)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        read_state(ipr)
        one_read = time.perf_counter() - start
    assert len(reply.steps) == 3 * n, len(reply.steps)
    return {"seconds": seconds, "phases": {"of which one full state read (done twice)": one_read}}


def _ip(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ip {' '.join(args[:6])} failed: {done.stderr.strip()}")
    return done.stdout


if __name__ == "__main__":
    raise SystemExit(main())
