"""An endpoint's health at a glance as pure functions (tidings.endpoint_health) and the worker's
hand-over of its counts (delivery.stats): buckets and their labels, p50/p95 to a bucket's bound,
the 24-hour window, the latest attempt, a failed hand-over kept for the next, and a worker run
over the fakes recording what it attempted."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.unit.delivery_fakes import FakeSender, FakeStore, make_claim, make_worker, wait_for
from tidings.clock import FakeClock
from tidings.delivery.stats import KEEP_SECONDS, run_stats
from tidings.endpoint_health import (
    Recorder,
    bucket_label,
    bucket_of,
    hour_of,
    summarize,
)
from tidings.store.base import StoreError
from tidings.store.types import DURATION_BOUNDS_MS, EndpointHour

NOW = 1_767_225_600.0 + 1800  # half past an hour


def test_buckets_and_their_labels() -> None:
    assert [bucket_of(ms) for ms in (0, 10, 10.5, 50, 999, 1000, 5000, 5001)] == [
        0,
        0,
        1,
        1,
        5,
        5,
        6,
        7,
    ]
    assert bucket_label(0) == "≤ 10 ms" and bucket_label(5) == "≤ 1 s"
    assert bucket_label(len(DURATION_BOUNDS_MS)) == "> 5 s" and bucket_label(None) == "—"


def test_summary_of_the_last_24_hours() -> None:
    r = Recorder()
    for _ in range(90):
        r.record("ep", "org", NOW - 60, 8.0, 200, None)  # ≤ 10 ms
    for _ in range(9):
        r.record("ep", "org", NOW - 50, 400.0, 200, None)  # ≤ 500 ms
    r.record("ep", "org", NOW - 10, 9000.0, None, "timeout")  # the last one
    r.record("ep", "org", NOW - 2 * 86_400, 8.0, 500, None)  # too old
    h = summarize(r.take(), NOW, held=3)
    assert (h.attempts, h.successes, h.held) == (100, 99, 3)
    assert h.success_rate == 0.99
    assert (h.p50_bucket, h.p95_bucket) == (0, 4)
    assert (h.last_attempt_at, h.last_status_code, h.last_error) == (NOW - 10, None, "timeout")
    empty = summarize([], NOW)
    assert empty.attempts == 0 and empty.success_rate is None and empty.p95_bucket is None


def test_the_recorder_adds_per_endpoint_and_hour_and_forgets_what_it_handed_over() -> None:
    r = Recorder()
    r.record("a", "org", NOW, 1.0, 200, None)
    r.record("a", "org", NOW + 1, 1.0, 404, None)
    r.record("a", "org", NOW + 3600, 1.0, 200, None)  # the next hour
    r.record("b", "org", NOW, 1.0, 200, None)
    hours = {(h.endpoint_id, h.hour): h for h in r.take()}
    assert set(hours) == {("a", hour_of(NOW)), ("a", hour_of(NOW) + 3600), ("b", hour_of(NOW))}
    assert hours[("a", hour_of(NOW))].attempts == 2
    assert hours[("a", hour_of(NOW))].last_status_code == 404
    assert r.take() == []
    r.put_back(hours.values())
    r.put_back([hours[("b", hour_of(NOW))]])
    again = {(h.endpoint_id, h.hour): h for h in r.take()}
    assert again[("b", hour_of(NOW))].attempts == 2


class StatsStore:
    def __init__(self, fail_first: int = 0) -> None:
        self.added: list[tuple[list[EndpointHour], float]] = []
        self.fail_first = fail_first

    async def add_endpoint_stats(
        self, hours: Sequence[EndpointHour], *, forget_before: float
    ) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise StoreError("database away")
        self.added.append((list(hours), forget_before))


async def test_hand_overs_retry_what_failed_and_end_with_a_last_one() -> None:
    clock = FakeClock(NOW)
    store = StatsStore(fail_first=1)
    recorder = Recorder()
    recorder.record("ep", "org", NOW, 1.0, 200, None)
    stop = asyncio.Event()
    task = asyncio.create_task(run_stats(store, clock, recorder, stop, interval_seconds=0.01))
    await wait_for(lambda: bool(store.added))  # the failed hand-over's hours came again
    assert store.added[0][0][0].attempts == 1 and store.added[0][1] == NOW - KEEP_SECONDS
    recorder.record("ep", "org", NOW, 1.0, 200, None)
    stop.set()
    await task
    assert sum(h.attempts for hours, _ in store.added for h in hours) == 2


async def test_a_worker_run_records_what_it_attempted() -> None:
    store = FakeStore([make_claim(1), make_claim(2, endpoint_id="ep_2")])
    worker = make_worker(store, FakeSender())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: sum(len(w) for w in store.writes) >= 2)
    stop.set()
    await task
    assert sorted((h.endpoint_id, h.attempts, h.successes) for h in store.stats) == [
        ("ep_1", 1, 1),
        ("ep_2", 1, 1),
    ]
