"""`python -m bench.abab OLD NEW [scenario ...] [--scale S] [--rounds N]`: two git revisions side
by side on a shared machine.

Each revision is exported (`git archive`) to a folder of its own under --workdir, and each run is
a fresh `python -m bench`-like process started there with that folder first on PYTHONPATH, so
the scenario, the tidings processes it starts and the code they load are all that revision's
(the virtualenv, its packages and the local PostgreSQL are shared). Runs alternate, round after
round (OLD NEW OLD NEW ..., "ABAB"), so a load that comes and goes on the machine falls on both
sides alike; the table gives every run's figure and the ratio NEW / OLD of their medians. A
ratio compares like with like only within one call: run it again and the figures move, the
ratios much less.

Quick look while working (a few minutes):
    scripts/bench-abab main HEAD throughput-pg publish --scale 0.1
The full comparison (a quiet machine, about an hour):
    scripts/bench-abab OLD NEW --scale 1 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["throughput-pg", "throughput-pg-2", "throughput-sqlite", "latency", "publish"]
# One scenario in a process of its own, as `python -m bench` runs it (uvloop included); it
# prints its figures as one JSON line, the last line of its output.
RUNNER = """
import asyncio, json, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
from bench.scenarios import SCENARIOS
figures = asyncio.run(SCENARIOS[sys.argv[1]](float(sys.argv[2]), sys.argv[3]))
print(json.dumps([f.to_dict() for f in figures]))
"""


def export(rev: str, workdir: Path) -> Path:
    """The tree of `rev` in a folder named by its commit (made once, reused after)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    folder = workdir / sha[:12]
    if not (folder / "bench").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, stdout=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(folder, filter="data")
    return folder


def run_once(tree: Path, scenario: str, scale: float, receiver: str) -> dict[str, float]:
    """{"figure (unit)": value} of one run of `scenario` on the code in `tree`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)])}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, scenario, str(scale), receiver],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{scenario} failed on {tree.name}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {f"{f['figure']} ({f['unit']})": float(f["value"]) for f in figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abab", description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("scenarios", nargs="*", help=f"default: {' '.join(QUICK)}")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs per scenario")
    parser.add_argument("--receiver", choices=["auto", "nginx", "counting"], default="auto")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "abab")
    args = parser.parse_args(argv)
    trees = {"old": export(args.old, args.workdir), "new": export(args.new, args.workdir)}
    print(f"old = {args.old} ({trees['old'].name}), new = {args.new} ({trees['new'].name})")
    rows: list[tuple[str, str, list[float], list[float]]] = []
    for scenario in args.scenarios or QUICK:
        runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
        for n in range(args.rounds):
            for side in ("old", "new"):
                got = run_once(trees[side], scenario, args.scale, args.receiver)
                runs[side].append(got)
                shown = ", ".join(f"{k} {v:,.4g}" for k, v in got.items())
                print(f"  {scenario} round {n + 1} {side}: {shown}", flush=True)
        for figure in runs["old"][0]:
            old = [r[figure] for r in runs["old"]]
            new = [r.get(figure, float("nan")) for r in runs["new"]]
            rows.append((scenario, figure, old, new))
    print(f"\n{'scenario':<18} {'figure':<40} {'old runs':<28} {'new runs':<28} new/old")
    for scenario, figure, old, new in rows:
        median_old, median_new = statistics.median(old), statistics.median(new)
        ratio = median_new / median_old if median_old else float("nan")
        print(
            f"{scenario:<18} {figure:<40} {' '.join(f'{v:,.4g}' for v in old):<28} "
            f"{' '.join(f'{v:,.4g}' for v in new):<28} {ratio:.3f}"
        )
    print("(a time, in s or ms, is better smaller; a rate or a ratio to the ceiling, larger)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
