"""Worker pieces without a database or network: the outcome decision, batched outcome writes,
the claim limit and a graceful stop, with an in-memory fake store and a fake sender."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tidings.delivery.metrics import DeliveryMetrics, status_class
from tidings.delivery.sender import SendResult
from tidings.delivery.worker import (
    FLOOR_SLACK_SECONDS,
    HOLD_MAX_LATENCY_SECONDS,
    Worker,
    decide_outcome,
    lease_seconds_for,
)
from tidings.models import (
    AttemptOutcome,
    ClaimedDelivery,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointHealth,
    EndpointSecret,
    EndpointStatus,
    Event,
)

pytestmark = pytest.mark.timeout(30)


def make_claim(n: int, *, endpoint_id: str = "ep_1", attempt_count: int = 0) -> ClaimedDelivery:
    event = Event(
        id=f"evt_{n}",
        organization_id="org",
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=1_700_000_000.0,
        data={"orderId": str(n)},
    )
    endpoint = Endpoint(
        id=endpoint_id,
        organization_id="org",
        url=f"https://example.com/{endpoint_id}",
        event_types=("compliance.*",),
        format="novatrade",
        secrets=(EndpointSecret("ntsec_" + "00" * 32, 0.0),),
    )
    delivery = Delivery(
        id=f"dlv_{n}",
        organization_id="org",
        event_id=event.id,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.PENDING,
        schema_version=1,
        attempt_count=attempt_count,
        next_attempt_at=0.0,
        created_at=0.0,
        updated_at=0.0,
    )
    return ClaimedDelivery(delivery=delivery, event=event, endpoint=endpoint)


def result(status: int | None, retry_after: str | None = None) -> SendResult:
    return SendResult(status, None if status else "OSError: refused", "", 1.0, retry_after)


SCHEDULE = (10.0, 20.0, 30.0)


@pytest.mark.parametrize(
    ("status", "attempts_before", "expected", "next_in"),
    [
        (200, 0, DeliveryStatus.SUCCEEDED, None),
        (204, 3, DeliveryStatus.SUCCEEDED, None),
        (500, 0, DeliveryStatus.PENDING, 10.0),
        (None, 1, DeliveryStatus.PENDING, 20.0),
        (302, 2, DeliveryStatus.PENDING, 30.0),
        (500, 3, DeliveryStatus.FAILED, None),
        (410, 0, DeliveryStatus.PENDING, 10.0),
    ],
)
def test_decide_outcome(
    status: int | None,
    attempts_before: int,
    expected: DeliveryStatus,
    next_in: float | None,
) -> None:
    claim = make_claim(1, attempt_count=attempts_before)
    finished = decide_outcome(
        claim,
        result(status),
        1000.0,
        retry_schedule=SCHEDULE,
        jitter_fraction=0.0,
        rng=random.Random(1),
    )
    out = finished.outcome
    assert out.status == expected
    assert out.attempt.number == attempts_before + 1
    assert out.success == (status is not None and 200 <= status < 300)
    assert finished.gone == (status == 410)
    if next_in is None:
        assert out.next_attempt_at is None
    else:
        assert out.next_attempt_at == 1000.0 + next_in


def test_retry_after_only_on_429_and_503_and_only_when_longer() -> None:
    def next_at(status: int, header: str) -> float | None:
        return decide_outcome(
            make_claim(1),
            result(status, header),
            0.0,
            retry_schedule=SCHEDULE,
            jitter_fraction=0.0,
            rng=random.Random(1),
        ).outcome.next_attempt_at

    assert next_at(429, "120") == 120.0
    assert next_at(503, "120") == 120.0
    assert next_at(500, "120") == 10.0
    assert next_at(429, "1") == 10.0


def test_lease_outlives_the_timeout_but_stays_inside_the_contract() -> None:
    lease = lease_seconds_for(15.0, 30.0)
    assert 15.0 < lease < 15.0 + 30.0 - 1.0  # one idle poll still fits


@pytest.mark.parametrize(
    ("code", "cls"), [(200, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (None, "error")]
)
def test_status_class(code: int | None, cls: str) -> None:
    assert status_class(code) == cls


def _dues(ids: Sequence[str], next_attempt_at: float | Sequence[float]) -> list[float]:
    """`release`'s due times, one per delivery."""
    if isinstance(next_attempt_at, int | float):
        return [float(next_attempt_at)] * len(ids)
    return list(next_attempt_at)


class FakeStore:
    """Hands out `claims` once, records what the worker writes."""

    def __init__(self, claims: list[ClaimedDelivery]) -> None:
        self.claims = list(claims)
        self.claim_limits: list[int] = []
        self.claim_floors: list[float] = []
        self.writes: list[list[AttemptOutcome]] = []
        self.released: list[tuple[list[str], float]] = []
        self.paused: list[tuple[str, str]] = []

    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        self.claim_limits.append(limit)
        self.claim_floors.append(due_from)
        batch, self.claims = self.claims[:limit], self.claims[limit:]
        return batch

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        self.writes.append(list(outcomes))
        return [
            EndpointHealth(o.endpoint_id, "org", EndpointStatus.ACTIVE, 0, None, now)
            for o in outcomes
        ]

    async def release(
        self, worker_id: str, ids: Sequence[str], next_attempt_at: float | Sequence[float]
    ) -> int:
        dues = _dues(ids, next_attempt_at)
        for due in sorted(set(dues)):  # as (ids, due) groups, in due order
            self.released.append(([i for i, d in zip(ids, dues, strict=True) if d == due], due))
        return len(ids)

    async def pause_endpoint(self, org: str, endpoint_id: str, reason: str, now: float) -> bool:
        self.paused.append((endpoint_id, reason))
        return True


class FakeSender:
    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.sent: list[str] = []
        self.closed = False

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.sent.append(headers["X-Tidings-Delivery-Id"])
        if self.gate is not None:
            await self.gate.wait()
        return SendResult(200, None, "ok", 1.0)

    async def close(self) -> None:
        self.closed = True


class NoPublisher:
    async def publish(self, envelope: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        raise AssertionError("no meta event expected")


def make_worker(store: FakeStore, sender: FakeSender, **options: Any) -> Worker:
    settings: dict[str, Any] = {
        "worker_id": "w1",
        "retention_days": 0,
        "poll_interval_seconds": 0.01,
        "metrics": DeliveryMetrics(),
        "shutdown_grace_seconds": 0.2,
    }
    settings.update(options)
    return Worker(store, None, NoPublisher(), sender, **settings)  # type: ignore[arg-type]


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(loop(), timeout)


async def test_outcomes_are_written_in_batches() -> None:
    claims = [make_claim(n, endpoint_id=f"ep_{n % 50}") for n in range(200)]
    store = FakeStore(claims)
    sender = FakeSender()
    worker = make_worker(store, sender, endpoint_max_in_flight=8, flush_max_outcomes=100)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: sum(len(w) for w in store.writes) == 200)
    stop.set()
    await task
    assert len(store.writes) < 20  # far fewer writes than outcomes
    assert max(len(w) for w in store.writes) <= 100
    assert sorted(o.delivery_id for w in store.writes for o in w) == sorted(
        c.delivery.id for c in claims
    )
    assert sender.closed


async def test_never_claims_more_than_it_can_start_and_releases_on_stop() -> None:
    gate = asyncio.Event()
    claims = [make_claim(n, endpoint_id=f"ep_{n}") for n in range(10)]
    store = FakeStore(claims)
    sender = FakeSender(gate)
    worker = make_worker(store, sender, concurrency=4, claim_batch_size=50)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) == 4)
    await asyncio.sleep(0.05)  # a few idle polls: nothing more may be claimed while full
    assert store.claim_limits[0] == 4
    assert len(sender.sent) == 4
    assert worker.in_flight == 4
    stop.set()  # the sends never finish: they are cut after the grace period and released
    await task
    released = [i for ids, _ in store.released for i in ids]
    assert sorted(released) == sorted(sender.sent)
    assert store.writes == []


async def test_in_flight_sends_finish_within_the_grace_period() -> None:
    gate = asyncio.Event()
    store = FakeStore([make_claim(1)])
    sender = FakeSender(gate)
    worker = make_worker(store, sender, shutdown_grace_seconds=5.0)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) == 1)
    stop.set()
    await asyncio.sleep(0.02)
    gate.set()
    await task
    assert [o.delivery_id for w in store.writes for o in w] == ["dlv_1"]
    assert store.released == []


async def test_claims_start_from_the_floor_and_from_the_start_twice_per_poll() -> None:
    """After a claim, the next one starts FLOOR_SLACK_SECONDS below the earliest due time it
    took (the deliveries already sent lie below it); once half an idle poll has passed since
    the last claim from the start, the next claim starts from the start again."""
    now = [5_000.0]
    claims = [
        dataclasses.replace(c, delivery=dataclasses.replace(c.delivery, next_attempt_at=due))
        for c, due in [
            (make_claim(1, endpoint_id="ep_a"), 4_000.0),
            (make_claim(2, endpoint_id="ep_b"), 3_000.0),
        ]
    ]
    store = FakeStore(claims)
    sender = FakeSender()
    worker = make_worker(
        store, sender, clock=lambda: now[0], poll_interval_seconds=30.0, claim_batch_size=2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # the first claim (from the start) takes both; a full batch is followed by another
        await wait_for(lambda: len(store.claim_floors) == 2)
        assert store.claim_floors == [-math.inf, 3_000.0 - FLOOR_SLACK_SECONDS]
        now[0] += 14.0  # less than half the poll: still from the floor
        worker.wake()
        await wait_for(lambda: len(store.claim_floors) == 3)
        assert store.claim_floors[2] == 3_000.0 - FLOOR_SLACK_SECONDS
        now[0] += 1.0  # half the poll since the last claim from the start
        worker.wake()
        await wait_for(lambda: len(store.claim_floors) == 4)
        assert store.claim_floors[3] == -math.inf
        worker.wake()  # an empty claim leaves the floor where it was
        await wait_for(lambda: len(store.claim_floors) == 5)
        assert store.claim_floors[4] == 3_000.0 - FLOOR_SLACK_SECONDS
    finally:
        stop.set()
        await task
    assert sorted(sender.sent) == ["dlv_1", "dlv_2"]


class DueStore(FakeStore):
    """In memory, like the real store: claims only due, unleased deliveries (oldest first);
    release makes them due again at `next_attempt_at`."""

    def __init__(self, claims: list[ClaimedDelivery], clock: Any) -> None:
        super().__init__([])
        self.clock = clock
        self.due: dict[str, tuple[float, int, ClaimedDelivery]] = {
            c.delivery.id: (clock(), n, c) for n, c in enumerate(claims)
        }
        self.claimed_ids: list[str] = []
        self.by_id = {c.delivery.id: c for c in claims}

    def add(self, claim: ClaimedDelivery) -> None:
        self.by_id[claim.delivery.id] = claim
        self.due[claim.delivery.id] = (self.clock(), len(self.due) + 10_000, claim)

    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        # the base records the limit and the floor (its own list of claims is empty)
        await super().claim_due(worker_id, now, lease_seconds, limit, due_from)
        ready = sorted(v for v in self.due.values() if v[0] <= now)[:limit]
        for _, _, claim in ready:
            del self.due[claim.delivery.id]
            self.claimed_ids.append(claim.delivery.id)
        return [claim for _, _, claim in ready]

    async def release(
        self, worker_id: str, ids: Sequence[str], next_attempt_at: float | Sequence[float]
    ) -> int:
        await super().release(worker_id, ids, next_attempt_at)
        dues = _dues(ids, next_attempt_at)
        for delivery_id, due in zip(ids, dues, strict=True):
            n = int(delivery_id.split("_")[1])
            self.due[delivery_id] = (due, n, self.by_id[delivery_id])
        return len(ids)


async def test_a_hung_endpoint_backlog_does_not_starve_others_or_spin() -> None:
    import time

    gate = asyncio.Event()
    backlog = [make_claim(n, endpoint_id="ep_hung") for n in range(1000)]
    store = DueStore(backlog, time.time)

    class Sender(FakeSender):
        async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
            self.sent.append(headers["X-Tidings-Delivery-Id"])
            if url.endswith("ep_hung"):
                await gate.wait()
            return SendResult(200, None, "ok", 1.0)

    sender = Sender()
    worker = make_worker(
        store,
        sender,
        endpoint_max_in_flight=2,
        claim_batch_size=50,
        poll_interval_seconds=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) == 2)
    for n in range(5):  # published after the whole backlog: due later than all of it
        store.add(make_claim(5000 + n, endpoint_id="ep_ok"))
    await wait_for(lambda: len(sender.sent) == 7)
    claims_after = len(store.claimed_ids)
    await asyncio.sleep(0.3)
    stop.set()
    gate.set()
    await task
    assert sorted(sender.sent[2:]) == [f"dlv_{5000 + n}" for n in range(5)]
    # the backlog went back spread out over time, so it is not claimed round and round
    assert len(store.claimed_ids) - claims_after < 200


async def test_a_fast_busy_endpoint_keeps_its_extra_deliveries_in_memory() -> None:
    claims = [make_claim(n) for n in range(4)]  # one endpoint: 2 in flight, 2 held
    store = FakeStore(claims)
    sender = FakeSender()
    worker = make_worker(store, sender, endpoint_max_in_flight=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: sum(len(w) for w in store.writes) == 4)
    stop.set()
    await task
    assert sorted(sender.sent) == sorted(c.delivery.id for c in claims)
    assert store.released == []  # no round trip to the store for the endpoint's extras


async def test_held_deliveries_go_back_before_their_lease_is_at_risk() -> None:
    gate = asyncio.Event()
    store = FakeStore([make_claim(n) for n in range(3)])
    sender = FakeSender(gate)
    # lease = timeout + 0.8 * margin; a held delivery may wait half of that margin share
    worker = make_worker(
        store, sender, endpoint_max_in_flight=1, lease_margin_seconds=0.25, shutdown_grace_seconds=5
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: {i for ids, _ in store.released for i in ids} == {"dlv_1", "dlv_2"})
    assert sender.sent == ["dlv_0"]
    stop.set()
    gate.set()
    await task
    assert [o.delivery_id for w in store.writes for o in w] == ["dlv_0"]


async def test_a_new_endpoint_that_hangs_gets_its_held_deliveries_back_within_a_second() -> None:
    """Holding is for endpoints whose slots free up fast. An endpoint new to the worker looks
    fast until its first sends have run for a while; if they hang, what the worker held for it
    goes back after HOLD_MAX_LATENCY_SECONDS, not after half the lease margin (12 s with the
    defaults), so hung endpoints cannot keep the worker's capacity."""
    import time

    gate = asyncio.Event()
    store = FakeStore([make_claim(n) for n in range(4)])  # window 2: two sent, two held
    sender = FakeSender(gate)
    worker = make_worker(store, sender, endpoint_max_in_flight=4, shutdown_grace_seconds=5)
    assert worker.lease_seconds - worker.delivery_timeout_seconds > 20  # the defaults
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(
        lambda: {i for ids, _ in store.released for i in ids} == {"dlv_2", "dlv_3"},
        timeout=HOLD_MAX_LATENCY_SECONDS + 2.0,
    )
    assert time.monotonic() - started >= HOLD_MAX_LATENCY_SECONDS
    assert sorted(sender.sent) == ["dlv_0", "dlv_1"]
    stop.set()
    gate.set()
    await task


async def test_an_endpoint_that_stops_answering_keeps_one_send_in_flight() -> None:
    import time

    answering = True
    in_flight = 0
    timeouts = 0
    seen: list[tuple[int, int]] = []  # (timeouts so far, sends in flight) at each send's start
    store = DueStore([make_claim(n, endpoint_id="ep_flaky") for n in range(400)], time.time)

    class Sender(FakeSender):
        async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
            nonlocal in_flight, timeouts
            self.sent.append(headers["X-Tidings-Delivery-Id"])
            in_flight += 1
            seen.append((timeouts, in_flight))
            try:
                if answering:
                    await asyncio.sleep(0.005)
                    return SendResult(200, None, "ok", 5.0)
                await asyncio.sleep(0.05)  # held until the (short) timeout
                timeouts += 1
                return SendResult(None, "timeout", None, 50.0)
            finally:
                in_flight -= 1

    sender = Sender()
    # its share only (no borrowing of idle slots: that case is the test below)
    worker = make_worker(
        store,
        sender,
        endpoint_max_in_flight=8,
        poll_interval_seconds=0.02,
        endpoint_borrow_factor=1,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) >= 200)
    answering = False
    await wait_for(lambda: timeouts >= 12)
    stop.set()
    await task
    # while it answered, its window opened past the two sends a new endpoint starts with
    assert max(n for t, n in seen if t == 0) > 2
    # once it stopped answering, each timeout halved the window: after the in-flight ones
    # had timed out (8 -> 4 -> 2 -> 1), one send at a time
    assert worker._windows.limit("ep_flaky") == 1
    late = [n for t, n in seen if t >= 8]
    assert late and max(late) == 1


class SlowSender(FakeSender):
    """Answers 200 after `delay` (a distant endpoint), or holds until a 50 ms timeout once
    `answering` is off; records the sends in flight at each start."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.answering = True
        self.in_flight = 0
        self.timeouts = 0
        self.seen: list[tuple[int, int]] = []  # (timeouts so far, sends in flight) at starts

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.sent.append(headers["X-Tidings-Delivery-Id"])
        self.in_flight += 1
        self.seen.append((self.timeouts, self.in_flight))
        try:
            if self.answering:
                await asyncio.sleep(self.delay)
                return SendResult(200, None, "ok", self.delay * 1000)
            await asyncio.sleep(0.05)
            self.timeouts += 1
            return SendResult(None, "timeout", None, 50.0)
        finally:
            self.in_flight -= 1


async def _lone_endpoint_peak(borrow_factor: int) -> int:
    import time

    store = DueStore([make_claim(n, endpoint_id="ep_far") for n in range(300)], time.time)
    sender = SlowSender(0.02)
    worker = make_worker(
        store,
        sender,
        concurrency=32,
        endpoint_max_in_flight=2,
        endpoint_borrow_factor=borrow_factor,
        poll_interval_seconds=0.02,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) >= 300)
    stop.set()
    await task
    return max(n for _, n in sender.seen)


async def test_a_lone_distant_endpoint_borrows_idle_slots_up_to_its_ceiling() -> None:
    # share 2, ceiling 2 x 8 = 16, and only while half of the worker's 32 slots are free
    peak = await _lone_endpoint_peak(8)
    assert 2 < peak <= 16
    assert await _lone_endpoint_peak(1) == 2  # no borrowing: its share


async def test_an_endpoint_that_hangs_after_borrowing_goes_back_to_one_send() -> None:
    import time

    store = DueStore([make_claim(n, endpoint_id="ep_far") for n in range(2000)], time.time)
    sender = SlowSender(0.01)
    worker = make_worker(
        store, sender, concurrency=64, endpoint_max_in_flight=4, poll_interval_seconds=0.02
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: len(sender.sent) >= 300)
    borrowed = max(n for _, n in sender.seen)
    sender.answering = False
    ceiling = 4 * 8  # its share x BORROW_FACTOR: at most this many hang at once
    await wait_for(lambda: sender.timeouts >= ceiling + 6)
    stop.set()
    await task
    assert borrowed > 4  # it had borrowed past its share of 4
    # the first timeout took it back to half its share; once every send it had in flight
    # (however many it had borrowed) timed out, one at a time
    late = [n for t, n in sender.seen if t > ceiling]
    assert late and max(late) == 1
