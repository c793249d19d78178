"""A worker says it is alive (delivery.presence): at start and every interval, with its start
time kept; a store error is logged and tried again; stopping deletes its row. A worker run
over the fakes does the same."""

from __future__ import annotations

import asyncio

from tests.unit.delivery_fakes import FakeSender, FakeStore, make_worker, wait_for
from tidings.clock import FakeClock
from tidings.delivery.presence import FORGET_AFTER_SECONDS, run_presence
from tidings.store.base import StoreError


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.seen: list[tuple[str, float, float, float]] = []
        self.gone: list[str] = []
        self.fail_first = fail_first

    async def worker_seen(
        self, worker_id: str, started_at: float, now: float, *, forget_before: float
    ) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise StoreError("database away")
        self.seen.append((worker_id, started_at, now, forget_before))

    async def worker_gone(self, worker_id: str) -> None:
        self.gone.append(worker_id)


async def test_presence_every_interval_then_gone() -> None:
    clock = FakeClock(1000.0)
    store = Recorder(fail_first=1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_presence(store, clock, "wrk_1", stop, interval_seconds=0.01))
    await wait_for(lambda: len(store.seen) >= 1)
    clock.advance(15)
    await wait_for(lambda: any(now == 1015.0 for _, _, now, _ in store.seen))
    stop.set()
    await task
    assert store.seen[0] == ("wrk_1", 1000.0, 1000.0, 1000.0 - FORGET_AFTER_SECONDS)
    assert {started for _, started, _, _ in store.seen} == {1000.0}  # the start is kept
    assert store.gone == ["wrk_1"]


async def test_a_worker_run_says_it_is_alive_and_gone() -> None:
    store = FakeStore([])
    worker = make_worker(store, FakeSender())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: bool(store.seen))
    assert store.seen[0][0] == worker.settings.worker_id
    stop.set()
    await task
    assert store.gone == [worker.settings.worker_id]
