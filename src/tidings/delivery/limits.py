"""Per-endpoint fairness, pure (handed `now`): a token bucket for `rateLimitPerSecond`, the
per-endpoint in-flight window, and the admission rule that decides, for a claimed batch, which
deliveries start now and which go back to the store for a little while (so a slow endpoint only
ever holds its own share of the worker).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from tidings.ttlcache import TtlCache

T = TypeVar("T")

# How long a delivery deferred because its endpoint is at its in-flight limit stays back.
CONCURRENCY_DEFER_SECONDS = 0.5
MIN_DEFER_SECONDS = 0.05
# An endpoint this worker has not heard from yet starts with this many deliveries in flight.
INITIAL_WINDOW = 2
# Windows remembered (least recently used forgotten first); a forgotten endpoint starts over.
MAX_TRACKED_WINDOWS = 100_000
# A healthy endpoint's window may grow past its share (`maximum`) up to this many times it, and
# use that much while the worker has room (ROOM_SHARE of its slots free): a distant endpoint
# needs more requests in flight for the same rate (8 in flight 50 ms away is 160/s), and slots
# nobody else wants cost no one anything. When the worker is busy every endpoint is held to its
# share again, so the split under contention is what it was.
BORROW_FACTOR = 8
ROOM_SHARE = 0.5


class TokenBucket:
    """`rate` tokens a second, at most `burst` stored; starts full."""

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self.tokens = self.burst
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float, queued: int = 0) -> float:
        """Seconds until a token is free for the request after `queued` others already waiting."""
        self._refill(now)
        missing = 1.0 + queued - self.tokens
        return max(0.0, missing / self.rate)

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(1.0, self.rate)
        self.tokens = min(self.tokens, self.burst)


class EndpointWindows:
    """How many deliveries each endpoint may have in flight: additive increase, multiplicative
    decrease, as TCP does for its congestion window. An endpoint starts at `initial`; every
    answered request (`grow`) adds one up to `maximum` x `borrow_factor`, of which it may use
    more than `maximum` (its share) only while the worker has room (`limit(…, room=True)`); a
    timeout, a failed connection or an "overloaded" answer (`shrink`) drops it to half its
    share or less, down to one. So an endpoint that stopped answering ties up one of the
    worker's slots until its timeout, not `maximum` of them, while a healthy endpoint reaches
    `maximum` after a handful of answers."""

    def __init__(
        self,
        maximum: int,
        initial: int = INITIAL_WINDOW,
        max_tracked: int = MAX_TRACKED_WINDOWS,
        borrow_factor: int = BORROW_FACTOR,
    ) -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self.ceiling = maximum * max(1, borrow_factor)
        self.initial = max(1, min(initial, maximum))
        # least recently changed forgotten first; entries never expire
        self._windows: TtlCache[str, float] = TtlCache(math.inf, max_tracked)

    def _window(self, endpoint_id: str) -> float:
        window = self._windows.get(endpoint_id, 0.0)
        return float(self.initial) if window is None else window

    def limit(self, endpoint_id: str, room: bool = False) -> int:
        """Deliveries the endpoint may have in flight: its window, capped at its share
        unless the worker has room."""
        window = int(self._window(endpoint_id))
        return window if room else min(window, self.maximum)

    def grow(self, endpoint_id: str) -> None:
        window = min(float(self.ceiling), self._window(endpoint_id) + 1.0)
        self._windows.put(endpoint_id, window, 0.0)

    def shrink(self, endpoint_id: str) -> None:
        # from the share, not from what it borrowed: a struggling endpoint gives back at once
        window = min(float(self.maximum), self._window(endpoint_id))
        self._windows.put(endpoint_id, max(1.0, window / 2.0), 0.0)


def struggling(status_code: int | None) -> bool:
    """An attempt that says the endpoint cannot take more right now: no answer (timeout,
    refused or broken connection) or 429 / 503. Other answers, fast failures included, do not
    hold a slot for long and say nothing about the endpoint's capacity."""
    return status_code is None or status_code in (429, 503)


def admit(
    items: Iterable[T],
    *,
    endpoint_of: Callable[[T], str],
    rate_of: Callable[[T], float | None],
    in_flight: Mapping[str, int],
    max_in_flight: int,
    buckets: dict[str, TokenBucket],
    now: float,
    busy_defer: Callable[[str], float] | None = None,
    hold: Callable[[T], bool] | None = None,
    limit_of: Callable[[str], int] | None = None,
) -> tuple[list[T], list[tuple[T, float]]]:
    """Split `items` into those that may start now and those to defer, with how many seconds.

    An item starts when its endpoint has fewer than `max_in_flight` deliveries in flight
    (`limit_of(endpoint_id)` when given, e.g. an EndpointWindows; counting the ones started
    earlier in this batch) and, if the endpoint has a rate limit, a
    token is free. Deferred items get a delay: the rate-limit wait for their place in the
    queue, or `busy_defer(endpoint_id)` (default CONCURRENCY_DEFER_SECONDS) when the endpoint
    is busy. A busy item that `hold(item)` takes (answers True) is the caller's to keep and is
    in neither list.
    """
    started: dict[str, int] = {}
    waiting: dict[str, int] = {}
    start: list[T] = []
    defer: list[tuple[T, float]] = []
    for item in items:
        endpoint_id = endpoint_of(item)
        busy = in_flight.get(endpoint_id, 0) + started.get(endpoint_id, 0)
        if busy >= (max_in_flight if limit_of is None else limit_of(endpoint_id)):
            if hold is not None and hold(item):
                continue
            delay = CONCURRENCY_DEFER_SECONDS if busy_defer is None else busy_defer(endpoint_id)
            defer.append((item, max(MIN_DEFER_SECONDS, delay)))
            continue
        rate = rate_of(item)
        if rate is not None and rate > 0:
            bucket = buckets.get(endpoint_id)
            if bucket is None:
                bucket = buckets[endpoint_id] = TokenBucket(rate, now=now)
            elif bucket.rate != rate:
                bucket.set_rate(rate)
            if not bucket.try_take(now):
                queued = waiting.get(endpoint_id, 0)
                waiting[endpoint_id] = queued + 1
                defer.append((item, max(MIN_DEFER_SECONDS, bucket.wait_time(now, queued))))
                continue
        started[endpoint_id] = started.get(endpoint_id, 0) + 1
        start.append(item)
    return start, defer


__all__ = [
    "BORROW_FACTOR",
    "CONCURRENCY_DEFER_SECONDS",
    "MIN_DEFER_SECONDS",
    "ROOM_SHARE",
    "EndpointWindows",
    "TokenBucket",
    "admit",
    "struggling",
]
