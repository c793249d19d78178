"""Claiming for one worker (delivery/claiming.py): where each claim's scan starts (the floor,
and the start of the queue twice per idle poll), how long the worker sleeps when idle (cut short
by what it gave back), and giving back in the background, where a store failure is logged and
left to the lease."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math

import pytest

from tidings.clock import FakeClock
from tidings.delivery.claiming import FLOOR_SLACK_SECONDS, MIN_IDLE_WAIT_SECONDS, Claimer
from tidings.delivery.settings import WorkerSettings
from tidings.models import ClaimedDelivery
from tidings.store.base import StoreError

from .delivery_fakes import FakeStore, make_claim

POLL = 30.0
SETTINGS = WorkerSettings(worker_id="w1", poll_interval_seconds=POLL)


def due_at(n: int, due: float) -> ClaimedDelivery:
    claim = make_claim(n, endpoint_id=f"ep_{n}")
    return dataclasses.replace(
        claim, delivery=dataclasses.replace(claim.delivery, next_attempt_at=due)
    )


async def test_the_scan_starts_at_the_floor_and_from_the_start_twice_per_poll() -> None:
    clock = FakeClock(5_000.0)
    store = FakeStore([due_at(1, 4_000.0), due_at(2, 3_000.0), due_at(3, 4_500.0)])
    claimer = Claimer(store, SETTINGS, clock)
    await claimer.claim(2, clock())  # from the start: takes the ones due at 4,000 and 3,000
    await claimer.claim(1, clock())  # from below the earliest of those: takes 4,500
    clock.advance(POLL / 2 - 1)
    await claimer.claim(1, clock())  # from below 4,500; nothing left: the floor stays
    clock.advance(1)
    await claimer.claim(1, clock())  # half a poll since the last claim from the start
    assert store.claim_floors == [
        -math.inf,
        3_000.0 - FLOOR_SLACK_SECONDS,
        4_500.0 - FLOOR_SLACK_SECONDS,
        -math.inf,
    ]
    assert store.claim_limits == [2, 1, 1, 1]


async def test_a_claim_from_the_floor_never_lowers_it() -> None:
    clock = FakeClock(5_000.0)
    store = FakeStore([due_at(1, 4_000.0), due_at(2, 100.0)])
    claimer = Claimer(store, SETTINGS, clock)
    await claimer.claim(1, clock())
    await claimer.claim(1, clock())  # takes one due long before the floor (e.g. a lost lease)
    assert claimer.floor(clock()) == 4_000.0 - FLOOR_SLACK_SECONDS


async def test_a_clock_that_went_back_scans_from_the_start() -> None:
    clock = FakeClock(1_000.0)
    claimer = Claimer(FakeStore([due_at(1, 900.0)]), SETTINGS, clock)
    await claimer.claim(1, clock())
    assert claimer.floor(1_001.0) == 900.0 - FLOOR_SLACK_SECONDS
    assert claimer.floor(990.0) == -math.inf
    assert claimer.floor(991.0) == 900.0 - FLOOR_SLACK_SECONDS


async def test_the_idle_wait_ends_when_something_given_back_comes_due() -> None:
    clock = FakeClock(1_000.0)
    claimer = Claimer(FakeStore([]), SETTINGS, clock)
    assert claimer.idle_wait() == POLL
    claimer.expect([1_000.3, 1_005.0, 1_000.3])
    assert claimer.idle_wait() == pytest.approx(0.3)
    clock.advance(1.0)  # overdue, but not claimed since: wake at once (almost)
    assert claimer.idle_wait() == MIN_IDLE_WAIT_SECONDS
    await claimer.claim(1, clock())  # a claim after it came due took it (or will not)
    assert claimer.idle_wait() == pytest.approx(4.0)
    clock.advance(10.0)
    await claimer.claim(1, clock())
    assert claimer.idle_wait() == POLL


async def test_giving_back_does_not_wait_for_the_store() -> None:
    store = FakeStore([])
    store.release_gate = asyncio.Event()
    claimer = Claimer(store, SETTINGS, FakeClock())
    claimer.give_back(["dlv_1", "dlv_2"], [10.0, 20.0])
    await asyncio.sleep(0)
    assert store.released == []
    store.release_gate.set()
    await claimer.settle()
    assert store.released == [(["dlv_1"], 10.0), (["dlv_2"], 20.0)]


async def test_a_failed_release_is_logged_and_left_to_the_lease(
    caplog: pytest.LogCaptureFixture,
) -> None:
    claimer = Claimer(FakeStore([], failing={"release"}), SETTINGS, FakeClock())
    with caplog.at_level(logging.WARNING, logger="tidings.delivery.claiming"):
        await claimer.release(["dlv_1"], 1.0)
        claimer.give_back(["dlv_2"], 1.0)
        await claimer.settle()
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions == ["worker.release_failed"] * 2


async def test_a_failed_claim_raises_store_error() -> None:
    claimer = Claimer(FakeStore([], failing={"claim_due"}), SETTINGS, FakeClock())
    with pytest.raises(StoreError):
        await claimer.claim(1, 0.0)
