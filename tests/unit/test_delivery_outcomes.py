"""Writing outcomes in batches (delivery/outcomes.py): one store write per batch of at most
`flush_max_outcomes`, store errors tried again, a batch the store keeps refusing dropped (its
leases run out and it is retried), what each written batch leads to handed on with the health
the store answered, and a writer that survives whatever that raises."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

import pytest

from tidings.clock import FakeClock
from tidings.delivery import outcomes
from tidings.delivery.attempt import Finished, decide_outcome
from tidings.delivery.outcomes import STORE_WRITE_TRIES, OutcomeWriter
from tidings.delivery.settings import WorkerSettings
from tidings.models import AttemptOutcome, EndpointHealth
from tidings.store.base import StoreError

from .delivery_fakes import FakeStore, make_claim, result, wait_for

pytestmark = pytest.mark.timeout(30)


def finished(n: int) -> Finished:
    return decide_outcome(
        make_claim(n),
        result(200),
        1_000.0,
        retry_schedule=(1.0,),
        jitter_fraction=0.0,
        rng=random.Random(1),
    )


class Handed:
    """An `after` that records what it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str], float]] = []

    async def __call__(
        self, batch: list[Finished], health: list[EndpointHealth], now: float
    ) -> None:
        ids = [f.outcome.delivery_id for f in batch]
        self.calls.append((ids, [h.endpoint_id for h in health], now))


def writer(store: FakeStore, after: Handed, **settings: Any) -> OutcomeWriter:
    worker_settings = WorkerSettings(worker_id="w1", **settings)
    return OutcomeWriter(store, worker_settings, FakeClock(2_000.0), after)


async def test_outcomes_go_out_in_batches_of_at_most_the_maximum() -> None:
    store, after = FakeStore([]), Handed()
    w = writer(store, after, flush_max_outcomes=2)
    for n in range(5):
        w.add(finished(n))
    w.close()  # what was added is still written
    await w.run()
    assert [[o.delivery_id for o in batch] for batch in store.writes] == [
        ["dlv_0", "dlv_1"],
        ["dlv_2", "dlv_3"],
        ["dlv_4"],
    ]
    assert [ids for ids, _, _ in after.calls] == [["dlv_0", "dlv_1"], ["dlv_2", "dlv_3"], ["dlv_4"]]
    assert after.calls[0][1:] == (["ep_1", "ep_1"], 2_000.0)  # the store's answer, the time


async def test_a_running_writer_waits_for_outcomes_and_writes_them() -> None:
    store, after = FakeStore([]), Handed()
    w = writer(store, after, flush_interval_seconds=0.001)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0.01)
    assert store.writes == []
    w.add(finished(1))
    w.add(finished(2))
    await wait_for(lambda: len(after.calls) == 1)
    w.close()
    await task
    assert after.calls[0][0] == ["dlv_1", "dlv_2"]


class FlakyStore(FakeStore):
    def __init__(self, failures: int) -> None:
        super().__init__([])
        self.failures = failures
        self.tries = 0

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        self.tries += 1
        if self.tries <= self.failures:
            raise StoreError("down")
        return await super().record_outcomes(worker_id, outcomes, now)


async def test_a_store_error_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outcomes, "STORE_RETRY_SECONDS", 0.0)
    store, after = FlakyStore(failures=2), Handed()
    await writer(store, after).write([finished(1)])
    assert store.tries == 3
    assert [ids for ids, _, _ in after.calls] == [["dlv_1"]]


async def test_a_batch_the_store_keeps_refusing_is_dropped_and_the_next_one_written(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outcomes, "STORE_RETRY_SECONDS", 0.0)
    store, after = FlakyStore(failures=STORE_WRITE_TRIES), Handed()
    w = writer(store, after)
    with caplog.at_level(logging.WARNING, logger="tidings.delivery.outcomes"):
        await w.write([finished(1)])
        await w.write([finished(2)])
    assert [ids for ids, _, _ in after.calls] == [["dlv_2"]]
    assert "worker.outcomes_dropped" in [getattr(r, "action", None) for r in caplog.records]


async def test_the_writer_survives_what_comes_after_a_write() -> None:
    store = FakeStore([])
    handed: list[str] = []

    async def after(batch: list[Finished], health: list[EndpointHealth], now: float) -> None:
        handed.extend(f.outcome.delivery_id for f in batch)
        raise RuntimeError("boom")

    w = OutcomeWriter(
        store,
        WorkerSettings(worker_id="w1", flush_max_outcomes=1),
        FakeClock(),
        after,
    )
    w.add(finished(1))
    w.add(finished(2))
    w.close()
    await w.run()
    assert handed == ["dlv_1", "dlv_2"]
