"""The statistics pass (table_statistics): at start and every interval, with the thresholds
handed to the store; a store error is logged and tried again. What it analyzes on PostgreSQL is
tests/integration/store/test_postgres.py's; that every process runs it,
tests/integration/api/test_api_processes.py's."""

from __future__ import annotations

import asyncio

from tests.unit.delivery_fakes import wait_for
from tidings.store.base import StoreError
from tidings.table_statistics import ANALYZE_FRACTION, ANALYZE_MIN_ROWS, run_analyze


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[int, float]] = []
        self.fail_first = fail_first

    async def refresh_statistics(self, rows: int, fraction: float) -> list[str]:
        if self.fail_first:
            self.fail_first -= 1
            raise StoreError("database away")
        self.calls.append((rows, fraction))
        return ["events"]


async def test_the_pass_runs_every_interval_and_outlives_a_store_error() -> None:
    store = Recorder(fail_first=1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_analyze(store, stop, interval_seconds=0.01))
    await wait_for(lambda: len(store.calls) >= 2)
    stop.set()
    await task
    assert store.calls[0] == (ANALYZE_MIN_ROWS, ANALYZE_FRACTION)


async def test_the_pass_stops_at_once_when_asked() -> None:
    store = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(run_analyze(store, stop, interval_seconds=3600))
    await wait_for(lambda: len(store.calls) == 1)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(store.calls) == 1
