"""`python -m bench <scenario>|all [--scale S] [--receiver auto|nginx|counting] [--no-report]`

Runs the scenarios, prints a table (ratio to the ceiling beside the absolute figure), and, unless
--no-report, writes bench/results.json, docs/benchmarks.md (the figures section) and
docs/benchmarks.png."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS, Figure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "benchmarks.png"
BEGIN, END = "<!-- bench:figures:begin -->", "<!-- bench:figures:end -->"


def _machine() -> str:
    import os

    cpus = os.cpu_count()
    mem = ""
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:  # pragma: no cover
        pass
    return f"{platform.machine()}, {cpus} cores{mem}, Python {platform.python_version()}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if 0 < abs(value) < 0.1:  # e.g. TLS handshakes per delivery: 0.0026, not 0.00
        return f"{value:.4f}"
    return f"{value:.2f}"


def _rows(figures: list[Figure]) -> list[list[str]]:
    rows = []
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "**no**")
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        rows.append(
            [f.scenario, f.figure, f"{_fmt(f.value)} {f.unit}", _fmt(f.ceiling), ratio, f.goal, met]
        )
    return rows


HEADERS = ["scenario", "figure", "value", "ceiling", "ratio", "goal", "met"]


def print_table(figures: list[Figure]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for row in _rows(figures):
            print(" | ".join(row))
        return
    table = Table(title="tidings bench")
    for h in HEADERS:
        table.add_column(h)
    for row in _rows(figures):
        table.add_row(*[c.replace("**", "") for c in row])
    Console().print(table)


def write_chart(figures: list[Figure]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ratios = [f for f in figures if f.ratio is not None]
    if not ratios:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.5 * len(ratios)))
    labels = [f"{f.scenario}: {f.figure}" for f in ratios]
    colours = ["tab:green" if f.met else "tab:red" for f in ratios]
    ax.barh(labels, [f.ratio or 0 for f in ratios], color=colours)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio to the ceiling measured in the same run (green: goal met)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)
    plt.close(fig)
    return True


def write_reports(figures: list[Figure], command: str, elapsed: float) -> None:
    previous: dict[str, Any] = {}
    runs: dict[str, Any] = {}  # scenario -> the command and date of the run its figures are from
    if RESULTS.exists():
        stored = json.loads(RESULTS.read_text())
        previous = stored.get("scenarios", {})
        runs = stored.get("runs", {})
    scenarios: dict[str, Any] = dict(previous)
    for f in figures:
        scenarios.setdefault(f.scenario, {})
    for name in {f.scenario for f in figures}:
        scenarios[name] = {}
    for f in figures:
        scenarios[f.scenario][f.figure] = {
            "value": f.value,
            "unit": f.unit,
            "ceiling": f.ceiling,
            "ratio": f.ratio,
            "goal": f.goal,
            "met": f.met,
            "size": f.size,
        }
    meta = {"command": command, "machine": _machine(), "date": time.strftime("%Y-%m-%d")}
    for name in {f.scenario for f in figures}:
        runs[name] = {"command": command, "date": meta["date"]}
    RESULTS.write_text(
        json.dumps({"meta": meta, "runs": runs, "scenarios": scenarios}, indent=2) + "\n"
    )
    all_figures = [
        Figure(
            s, fig, v["value"], v["unit"], v["goal"], v["met"], v["ceiling"], v["ratio"], v["size"]
        )
        for s, figs in scenarios.items()
        for fig, v in figs.items()
    ]
    charted = write_chart(all_figures)
    lines = [
        BEGIN,
        f"Measured {meta['date']} on {meta['machine']} with `{command}` "
        f"({elapsed:.0f} s for this run)"
        + (
            "; figures of scenarios it did not run are kept from earlier runs, named in their "
            "size lines."
            if len({r["command"] for r in runs.values()}) > 1
            else "."
        ),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(all_figures)]
    lines += ["", "Sizes actually run:", ""]
    seen = set()
    for f in all_figures:
        if f.scenario not in seen:
            seen.add(f.scenario)
            run = runs.get(f.scenario)
            where = "" if run is None else f" (`{run['command']}`, {run['date']})"
            lines.append(f"- **{f.scenario}**{where}: {f.size}")
    if charted:
        lines += ["", "![ratios to the ceiling](benchmarks.png)"]
    lines.append(END)
    block = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)


async def run(names: list[str], scale: float, receiver: str) -> list[Figure]:
    figures: list[Figure] = []
    for name in names:
        started = time.monotonic()
        print(f"▶ {name} (scale {scale})", flush=True)
        result = await SCENARIOS[name](scale, receiver)
        figures += result
        for f in result:
            ratio = "" if f.ratio is None else f" ({f.ratio:.2f} x ceiling {_fmt(f.ceiling)})"
            print(f"  {f.figure}: {_fmt(f.value)} {f.unit}{ratio}  goal {f.goal}", flush=True)
        print(f"  {time.monotonic() - started:.0f} s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the issue's sizes")
    parser.add_argument("--receiver", choices=["auto", "nginx", "counting"], default="auto")
    parser.add_argument("--no-report", action="store_true", help="print only; write nothing")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    # a run stopped with SIGTERM still tears down what it set up (namespaces, receivers,
    # databases, Celery workers): the exit unwinds through every scenario's `finally`
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    started = time.monotonic()
    figures = asyncio.run(run(names, args.scale, args.receiver))
    print_table(figures)
    if not args.no_report:
        command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        write_reports(figures, command, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
