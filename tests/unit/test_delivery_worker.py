"""The worker as a whole, without a database or network: batched outcome writes, the claim
limit, the scan floor seen through the claims it makes, holding and giving back, windows that
close on an endpoint that stops answering, and a graceful stop; with the in-memory fakes of
`delivery_fakes`. Each room's own contract is tested in its own file (test_delivery_attempt,
_claiming, _pacing, _outcomes, _aftermath, _settings)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Mapping

import pytest

from tidings.delivery.claiming import FLOOR_SLACK_SECONDS
from tidings.delivery.pacing import HOLD_MAX_LATENCY_SECONDS
from tidings.delivery.sender import SendResult

from .delivery_fakes import DueStore, FakeSender, FakeStore, make_claim, make_worker, wait_for

pytestmark = pytest.mark.timeout(30)


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


async def test_a_hung_endpoint_backlog_does_not_starve_others_or_spin() -> None:
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
    gate = asyncio.Event()
    store = FakeStore([make_claim(n) for n in range(4)])  # window 2: two sent, two held
    sender = FakeSender(gate)
    worker = make_worker(store, sender, endpoint_max_in_flight=4, shutdown_grace_seconds=5)
    settings = worker.settings
    assert settings.lease_seconds - settings.delivery_timeout_seconds > 20  # the defaults
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
    assert worker.pacer.windows.limit("ep_flaky") == 1
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
