"""Run the fleet simulator as its own process (its own core and GIL), driven over stdin.

    python -m agent.sim --hosts 1000 --vms 50 --nics 2 --socket /tmp/sim.sock --pki-dir DIR

DIR holds ca.pem, cert.pem, key.pem (a certificate naming every simulated
host: agent.sim.pki). Commands, one per line, each answered with one line:
`rounds N` (N rounds of one change on every host; answers `ok CHANGES`),
`restart HOST`, `quit`. It prints `ready` once serving.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from virtfleet.tls import TlsMaterial

from .fleet import FleetSimulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.sim")
    p.add_argument("--hosts", type=int, default=10)
    p.add_argument("--vms", type=int, default=5)
    p.add_argument("--nics", type=int, default=2)
    p.add_argument("--first", type=int, default=1, help="number of the first host (sim00001)")
    p.add_argument("--socket", type=Path, required=True)
    p.add_argument("--pki-dir", type=Path, required=True)
    args = p.parse_args(argv)
    sim = FleetSimulator(TlsMaterial.load(args.pki_dir), args.socket, hosts=args.hosts, vms=args.vms,
                         nics=args.nics, first=args.first)
    with sim:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "rounds":
                changes = 0
                for _ in range(int(words[1])):
                    changes += sim.churn_round()
                print(f"ok {changes}", flush=True)
            elif words[0] == "restart":
                sim.restart(words[1])
                print("ok", flush=True)
            else:
                print(f"error unknown command {words[0]!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
