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


def test_nginx_access_log_counts_deliveries_duplicates_and_receipts(tmp_path: Path) -> None:
    """Runs on nginx count from its access log (`$msec delivery event webhook-id`)."""
    sys.path.insert(0, str(ROOT))
    from bench.receiver import _nginx_stats

    log = tmp_path / "ids.log"
    log.write_text(
        "1000.001 dlv_1 evt_1 -\n"
        "1000.002 dlv_2 evt_1 -\n"
        "1000.010 dlv_1 evt_1 -\n"  # dlv_1 sent twice
        "1000.020 dlv_3 - msg_9\n"  # standard format: the event id is webhook-id
        "1000.030 - - -\n"  # no delivery id
        "1000.040 dlv_ceiling_7 - -\n"  # the ceiling's own requests
    )
    stats = _nginx_stats(log)
    assert stats["total"] == 4
    assert stats["deliveries"] == 3
    assert stats["duplicates"] == 1
    assert stats["first_seen"] == {"evt_1": 1000.001, "msg_9": 1000.020}
    assert stats["last_at"] == 1000.020
