"""The benchmark suite cannot rot: tiny runs of real scenarios end to end (real PostgreSQL and
SQLite, real `tidings` processes, the counting aiohttp receiver), printing figures but writing no
report. Figures are not asserted against goals here (goals live in docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("scenario", ["throughput-pg-2", "throughput-sqlite", "fan-out"])
def test_bench_scenario_runs_end_to_end(scenario: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            scenario,
            "--scale",
            "0.01",
            "--receiver",
            "counting",
            "--no-report",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"▶ {scenario}" in done.stdout
    # a figure line with a number was printed
    assert any(ch.isdigit() for ch in done.stdout.split(f"▶ {scenario}", 1)[1])
    if scenario == "throughput-pg-2":
        assert "sent twice: 0.00" in done.stdout
