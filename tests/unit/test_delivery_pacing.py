"""Per-endpoint pacing (delivery/pacing.py): a new endpoint's window, the extras of a busy fast
endpoint held in memory and started as its sends finish, the extras of slow or rate-limited
endpoints deferred and spaced, held deliveries given back when they waited too long or the
worker stops, and the window opening and closing with the answers."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.clock import FakeClock
from tidings.delivery.limits import INITIAL_WINDOW
from tidings.delivery.pacing import (
    BUSY_DEFER_MAX_SECONDS,
    BUSY_DEFER_MIN_LATENCY_SECONDS,
    HOLD_MAX_LATENCY_SECONDS,
    EndpointPacer,
    max_hold_seconds,
)
from tidings.delivery.settings import WorkerSettings
from tidings.models import ClaimedDelivery

from .delivery_fakes import make_claim


class Books:
    """A pacer with a hand-moved clock, recording what it starts and when it wakes the loop."""

    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock(1_000.0)
        self.started: list[str] = []
        self.wakes = 0
        self.stopping = False
        self.free = 0  # the worker's free slots: none, so no endpoint borrows past its share
        self.settings = WorkerSettings(worker_id="w1", **settings)
        self.pacer = EndpointPacer(
            self.settings,
            self.clock,
            start=self.start,
            wake=self.wake,
            stopping=lambda: self.stopping,
            free=lambda: self.free,
        )

    def start(self, claim: ClaimedDelivery) -> None:
        self.pacer.started(claim.delivery.endpoint_id)
        self.started.append(claim.delivery.id)

    def wake(self) -> None:
        self.wakes += 1

    def admit(self, claims: list[ClaimedDelivery]) -> tuple[list[str], list[str]]:
        start, defer = self.pacer.admit(claims, self.clock())
        for claim in start:
            self.start(claim)
        return [c.delivery.id for c in start], [c.delivery.id for c, _ in defer]

    def send(self, endpoint_id: str, status: int | None, duration_ms: float) -> None:
        """One send of the endpoint, begun and finished now."""
        self.pacer.sending(endpoint_id, self.clock())
        self.pacer.answered(endpoint_id, status, duration_ms)
        self.pacer.finished(endpoint_id, self.clock())


def test_a_new_fast_endpoint_starts_two_and_holds_its_share_of_the_rest() -> None:
    books = Books(endpoint_max_in_flight=3)
    start, defer = books.admit([make_claim(n) for n in range(7)])
    assert start == ["dlv_0", "dlv_1"]  # the initial window
    assert INITIAL_WINDOW == 2
    assert books.pacer.held_total == 3  # at most endpoint_max_in_flight held
    assert defer == ["dlv_5", "dlv_6"]


def test_held_deliveries_start_as_the_endpoints_sends_finish() -> None:
    books = Books(endpoint_max_in_flight=4)
    books.admit([make_claim(n) for n in range(5)])
    assert books.started == ["dlv_0", "dlv_1"]
    books.pacer.sending("ep_1", books.clock())
    books.pacer.answered("ep_1", 200, 5.0)  # the window grows to 3
    books.pacer.finished("ep_1", books.clock())  # one slot freed, one more opened
    assert books.started == ["dlv_0", "dlv_1", "dlv_2", "dlv_3"]
    assert books.pacer.held_total == 1
    assert books.wakes == 0


def test_a_slow_endpoints_extras_go_back_spaced_by_its_send_time() -> None:
    books = Books(endpoint_max_in_flight=2)
    books.send("ep_1", 200, 2_000.0)  # slower than HOLD_MAX_LATENCY_SECONDS
    books.send("ep_1", 200, 2_000.0)
    start, defer = books.admit([make_claim(n) for n in range(4)])
    assert len(start) == 2 and len(defer) == 2 and books.pacer.held_total == 0
    _, delays = zip(*books.pacer.admit([make_claim(9)], books.clock())[1], strict=True)
    # the latency over the window's two slots, one step after the two deferred before
    assert delays == (pytest.approx(3.0),)


def test_a_fast_busy_endpoints_deferrals_are_spaced_by_its_full_share() -> None:
    books = Books(endpoint_max_in_flight=8)
    first = books.pacer.busy_defer("ep_1")
    second = books.pacer.busy_defer("ep_1")
    step = BUSY_DEFER_MIN_LATENCY_SECONDS / 8
    assert first == pytest.approx(step)
    assert second == pytest.approx(2 * step)


def test_a_hung_endpoints_deferrals_are_capped() -> None:
    books = Books(endpoint_max_in_flight=1)
    books.pacer.sending("ep_1", books.clock())
    books.clock.advance(10 * BUSY_DEFER_MAX_SECONDS)  # its send has run this long
    assert books.pacer.latency("ep_1", books.clock()) >= HOLD_MAX_LATENCY_SECONDS
    assert books.pacer.busy_defer("ep_1") == BUSY_DEFER_MAX_SECONDS
    assert not books.pacer.hold(make_claim(1))  # not held: its slot is not freeing up


def test_a_rate_limited_endpoints_extras_are_not_held() -> None:
    books = Books(endpoint_max_in_flight=8)
    claims = [make_claim(n, rate_limit_per_second=100.0) for n in range(4)]
    start, defer = books.admit(claims)
    assert len(start) == 2 and len(defer) == 2
    assert books.pacer.held_total == 0


def test_held_too_long_goes_back_and_wakes_the_loop() -> None:
    books = Books(endpoint_max_in_flight=4)
    books.admit([make_claim(n) for n in range(3)])  # two started, one held
    books.admit([make_claim(10 + n, endpoint_id="ep_2") for n in range(3)])  # the same
    books.clock.advance(max_hold_seconds(books.settings) + 0.01)
    books.pacer.sending("ep_1", books.clock())
    books.pacer.finished("ep_1", books.clock())  # a slot frees, but its held one is stale
    assert books.started == ["dlv_0", "dlv_1", "dlv_10", "dlv_11"]
    assert books.wakes == 1
    assert books.pacer.take_stale() == ["dlv_2"]
    books.pacer.sweep()  # ep_2 freed no slot: the sweep finds its held one
    assert books.pacer.take_stale() == ["dlv_12"]
    assert books.pacer.take_stale() == []
    assert books.pacer.held_total == 0


def test_a_stopping_worker_starts_nothing_held() -> None:
    books = Books(endpoint_max_in_flight=4)
    books.admit([make_claim(n) for n in range(3)])
    books.stopping = True
    books.send("ep_1", 200, 1.0)
    assert books.started == ["dlv_0", "dlv_1"]
    assert books.pacer.take_stale() == ["dlv_2"]


def test_taking_all_held_empties_the_books() -> None:
    books = Books(endpoint_max_in_flight=4)
    books.admit([make_claim(n) for n in range(3)])
    books.admit([make_claim(10 + n, endpoint_id="ep_2") for n in range(3)])
    assert sorted(books.pacer.take_all_held()) == ["dlv_12", "dlv_2"]
    assert books.pacer.held_total == 0
    assert books.pacer.take_all_held() == []


def test_the_window_opens_with_answers_and_closes_on_struggling_ones() -> None:
    books = Books(endpoint_max_in_flight=8)
    for _ in range(10):
        books.send("ep_1", 500, 1.0)  # a fast failure says nothing about capacity
    assert books.pacer.windows.limit("ep_1") == 8
    books.send("ep_1", 503, 1.0)
    books.send("ep_1", None, 1.0)
    assert books.pacer.windows.limit("ep_1") == 2


def test_a_healthy_endpoint_borrows_past_its_share_only_while_the_worker_has_room() -> None:
    books = Books(endpoint_max_in_flight=2, endpoint_borrow_factor=3, concurrency=10)
    for _ in range(10):
        books.send("ep_1", 200, 1.0)
    assert books.pacer.limit("ep_1") == 2  # no free slot: its share
    books.free = 5  # half the worker's slots are free
    assert books.pacer.limit("ep_1") == 6
    start, _ = books.admit([make_claim(n) for n in range(8)])
    assert len(start) == 6
    books.free = 4
    assert books.pacer.limit("ep_1") == 2


@pytest.mark.parametrize(
    ("margin", "expected"),
    [(30.0, HOLD_MAX_LATENCY_SECONDS), (0.25, 0.1), (0.01, 0.05)],
)
def test_a_held_delivery_waits_at_most_what_the_lease_can_spare(
    margin: float, expected: float
) -> None:
    settings = WorkerSettings(worker_id="w1", lease_margin_seconds=margin)
    assert max_hold_seconds(settings) == pytest.approx(expected)
