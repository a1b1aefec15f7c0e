"""Before/after: one benchmark run alternately from this checkout and another, figures side by side.

`python -m bench.compare NAME --against DIR [--rounds R] [--figure KEY] [-- ARGS…]` runs
`python -m bench.NAME ARGS` R times from each checkout, taking turns (this, other, this, …) so
a load burst hits both alike, reads FIGURE from each run's last-line JSON, and prints both
medians and bests and the ratio this/other per round (median and best). DIR is any other
checkout of the project (e.g. `git worktree add --detach /tmp/before REV`); each run
imports only its own checkout's code. The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run(checkout: Path, name: str, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{checkout}:{checkout / 'protos'}"}
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=checkout, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench.{name} in {checkout} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--against", type=Path, required=True, help="the other checkout")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--figure", required=True, help="the JSON key to compare")
    p.add_argument("--lower-is-better", action="store_true", help="the figure is a time, not a rate")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:split])
    a.args = argv[split + 1:]          # everything after `--` goes to the benchmark
    this, other = [], []
    for _ in range(a.rounds):
        this.append(float(run(HERE, a.name, a.args)[a.figure]))
        other.append(float(run(a.against.resolve(), a.name, a.args)[a.figure]))
    ratios = [t / o for t, o in zip(this, other)]
    pick = min if a.lower_is_better else max
    print(f"bench.{a.name} {a.figure}: this checkout vs {a.against}, {a.rounds} interleaved rounds")
    print(f"{'checkout':<10} {'median':>12} {'best':>12}")
    print(f"{'this':<10} {statistics.median(this):>12.4g} {pick(this):>12.4g}")
    print(f"{'other':<10} {statistics.median(other):>12.4g} {pick(other):>12.4g}")
    print(f"this/other per round: median {statistics.median(ratios):.3f}, best {pick(ratios):.3f}")
    print(json.dumps({"bench": a.name, "figure": a.figure, "rounds": a.rounds, "this": statistics.median(this),
                      "this_best": pick(this), "other": statistics.median(other), "other_best": pick(other),
                      "ratio": round(statistics.median(ratios), 3), "ratio_best": round(pick(ratios), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
