"""The benchmark suite cannot rot: tiny runs of real scenarios end to end (real PostgreSQL and
SQLite, real `tidings` processes, the counting aiohttp receiver), printing figures but writing no
report. Figures are not asserted against goals here (goals live in docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# wan: its own network namespace, nginx with TLS 1.3 and the bench's CA (TIDINGS_CA_BUNDLE);
# ceilings: the aiohttp, pyreqwest and pycurl loops on loopback nginx and that distant receiver;
# peer-celery: the Celery peer on the local Redis (one trial of each pool), ABAB with tidings
@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    "scenario",
    [
        "throughput-pg-2",
        "throughput-sqlite",
        "fan-out",
        "wan",
        "ceilings",
        "peer-celery",
        "console",
        "publish-filter",
        "ordered",
        "ordered-blocked",
        "retention",
    ],
)
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
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"▶ {scenario}" in done.stdout
    # a figure line with a number was printed
    assert any(ch.isdigit() for ch in done.stdout.split(f"▶ {scenario}", 1)[1])
    if scenario in ("throughput-pg-2", "wan"):
        assert "sent twice: 0.00" in done.stdout
    if scenario in ("ordered", "ordered-blocked"):  # the receiver's order check ran
        assert "out of order: 0.00" in done.stdout
        assert "not received: 0.00" in done.stdout
    if scenario == "retention":  # each B pass dropped the oldest day of both tables
        assert done.stdout.count("dropped deliveries_p") == 2, done.stdout
        assert done.stdout.count(", attempts_p") == 2, done.stdout
    if scenario == "peer-celery":  # both comparisons ran, each on its own receiver
        assert "tidings / peer (throughput-pg)" in done.stdout
        assert "tidings / peer (wan)" in done.stdout


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


def test_the_order_check_counts_what_a_receiver_of_an_ordered_endpoint_must_not_see(
    tmp_path: Path,
) -> None:
    """bench.ordered's check over nginx's order log (`status path delivery event sequence
    previous`): per endpoint and subject, a sequence below one seen, or a previous event that is
    not the last one accepted, is out of order; a failing event's retry and a resend are not."""
    sys.path.insert(0, str(ROOT))
    from bench.ordered import check_order
    from bench.receiver import read_order_log

    log = tmp_path / "order.log"
    log.write_text(
        "200 /ep0 dlv_1 evt_s1_n1 1 -\n"
        "200 /ep1 dlv_2 evt_s1_n1 1 -\n"  # the same subject on another endpoint: its own order
        "500 /ep0 dlv_3 evt_blk_s1_n3 4 evt_s1_n1\n"  # fails ...
        "500 /ep0 dlv_3 evt_blk_s1_n3 4 evt_s1_n1\n"  # ... and is retried: in order
        "200 /ep0 dlv_4 evt_s1_n5 6 evt_blk_s1_n3\n"  # sent while its previous was failing
        "200 /ep0 dlv_5 evt_s2_n2 3 -\n"  # another subject, lower sequence: in order
        "200 /ep0 dlv_6 evt_s2_n0 2 -\n"  # a lower sequence of subject 2
        "200 /ep0 dlv_5 evt_s2_n2 3 -\n"  # dlv_5 again after n0: no longer the last accepted
        "200 /ep1 dlv_7 evt_s1_n9 9 evt_s1_n5\n"  # previous is not the last accepted (n1)
        "200 /ceiling dlv_ceiling_1 - - -\n"  # not a tidings delivery
    )
    records = read_order_log(log)
    assert len(records) == 9
    assert records[2] == (500, "/ep0", "dlv_3", "evt_blk_s1_n3", 4, "evt_s1_n1")
    check = check_order(records)
    assert check.requests == 9
    assert check.out_of_order == 4  # n5 after a failing n3, n0 below 3, n2 again, n9
    assert check.accepted == 6
    assert check.sent_twice == 1  # dlv_5


def test_ordered_workload_spreads_subjects_and_marks_the_blocked_ones() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.ordered import blocked_subjects, ordered_envelope

    assert blocked_subjects(1_000, 0.01) == frozenset(range(0, 1_000, 100))
    assert blocked_subjects(10, 0.01) == {0}
    assert blocked_subjects(10, 0.0) == frozenset()
    first = ordered_envelope("org", 1_203, subjects=1_000, blocked=frozenset({203}))
    assert (first["id"], first["subject"]) == ("evt_blk_s203_n1203", "sub_203")
    second = ordered_envelope("org", 1_204, subjects=1_000, blocked=frozenset({203}))
    assert (second["id"], second["subject"]) == ("evt_s204_n1204", "sub_204")


def test_wan_access_log_counts_handshakes_per_side(tmp_path: Path) -> None:
    """The wan receiver's log adds the connection's serial number, its request count (1 = a
    new connection, so a TLS handshake) and whether the handshake resumed a session."""
    sys.path.insert(0, str(ROOT))
    from bench.wan_net import tls_stats

    log = tmp_path / "ids.log"
    log.write_text(
        "1000.001 dlv_ceiling_1 - - 1 1 .\n"  # the ceiling's connection
        "1000.002 dlv_ceiling_2 - - 1 2 .\n"
        "1000.003 dlv_1 evt_1 - 2 1 .\n"  # tidings: a new connection
        "1000.004 dlv_2 evt_1 - 2 2 .\n"  # kept alive
        "1000.005 dlv_3 evt_2 - 3 1 r\n"  # a new connection that resumed a session
        "1000.006 dlv_3 evt_2 - 3 2 .\n"  # dlv_3 sent twice
        "1000.007 - - - 4 1 .\n"  # no delivery id
    )
    stats = tls_stats(log)
    assert stats["handshakes"] == {"tidings": 2, "ceiling": 1}
    assert stats["resumed"] == {"tidings": 1, "ceiling": 0}
    assert stats["requests"] == {"tidings": 4, "ceiling": 2}
    assert stats["duplicates"] == 1 and stats["deliveries"] == 3
    assert stats["first_seen"] == {"evt_1": 1000.003, "evt_2": 1000.005}
