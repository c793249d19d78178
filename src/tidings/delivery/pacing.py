"""Per-endpoint pacing inside one worker: how many of an endpoint's deliveries are in flight
against its window (`limits.EndpointWindows`) and its rate limit's token bucket, how fast it
answers, which of its claimed deliveries over its share are held in memory to start as a slot
frees (`hold`), and how far into the future the others go back to the store (`busy_defer`).

A busy endpoint whose sends take less than HOLD_MAX_LATENCY_SECONDS keeps up to
`endpoint_max_in_flight` extra claimed deliveries in memory and starts one as each send finishes
(no round trip to the store); slower endpoints' extras go back to the store, spaced by the time
one of their slots is expected to free up (send time over slot count), so a fast endpoint's come
back almost at once and a hung endpoint's are spread out (at most BUSY_DEFER_MAX_SECONDS)
instead of being claimed and released round and round.

The pacer keeps its own books; the worker tells it when a send starts, is answered and ends,
and hands it the start of a delivery (`start`) and a wake-up of its claim loop (`wake`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tidings.clock import Clock
from tidings.delivery.limits import ROOM_SHARE, EndpointWindows, TokenBucket, admit, struggling
from tidings.delivery.settings import WorkerSettings
from tidings.models import ClaimedDelivery

HOLD_MAX_LATENCY_SECONDS = 1.0
BUSY_DEFER_MIN_LATENCY_SECONDS = 0.01
BUSY_DEFER_MAX_SECONDS = 30.0
LATENCY_EWMA_WEIGHT = 0.2
# A held delivery waits at least this long before it goes back.
MIN_HOLD_SECONDS = 0.05


def max_hold_seconds(settings: WorkerSettings) -> float:
    """How long a held delivery may wait for a slot before it goes back: holding is for
    endpoints whose slots free up within HOLD_MAX_LATENCY_SECONDS (an endpoint new to the
    worker that turns out to hang must not keep worker capacity for its timeout), and the lease
    must still cover a whole send and the write after it."""
    margin = settings.lease_seconds - settings.delivery_timeout_seconds
    return max(MIN_HOLD_SECONDS, min(HOLD_MAX_LATENCY_SECONDS, 0.5 * margin))


def _endpoint_of(claim: ClaimedDelivery) -> str:
    return claim.delivery.endpoint_id


def _rate_of(claim: ClaimedDelivery) -> float | None:
    return claim.endpoint.rate_limit_per_second


class EndpointPacer:
    """The per-endpoint books of one worker (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        clock: Clock,
        *,
        start: Callable[[ClaimedDelivery], None],
        wake: Callable[[], None],
        stopping: Callable[[], bool],
        free: Callable[[], int],
    ) -> None:
        self.windows = EndpointWindows(
            settings.endpoint_max_in_flight, borrow_factor=settings.endpoint_borrow_factor
        )
        self._max_in_flight = settings.endpoint_max_in_flight
        # endpoints may borrow past their share while this many of the worker's slots are free
        self._room_slots = ROOM_SHARE * settings.concurrency
        self._free = free
        self._max_hold_seconds = max_hold_seconds(settings)
        self._clock = clock
        self._start = start
        self._wake = wake
        self._stopping = stopping
        self._in_flight: dict[str, int] = {}  # endpoint id -> sends started, not finished
        self._buckets: dict[str, TokenBucket] = {}
        self._latency: dict[str, float] = {}  # endpoint id -> EWMA of send seconds
        self._send_started: dict[str, list[float]] = {}  # endpoint id -> starts in flight
        self._next_slot: dict[str, float] = {}  # endpoint id -> last deferral handed out
        self._held: dict[str, deque[tuple[ClaimedDelivery, float]]] = {}
        self.held_total = 0
        self._stale: list[str] = []  # held too long: to give back

    # ---- admission --------------------------------------------------------------------------
    def admit(
        self, claims: list[ClaimedDelivery], now: float
    ) -> tuple[list[ClaimedDelivery], list[tuple[ClaimedDelivery, float]]]:
        """Which claims start now and which go back, each with its delay in seconds; the ones
        held are in neither list. `now` is the loop's monotonic time (the token buckets')."""
        return admit(
            claims,
            endpoint_of=_endpoint_of,
            rate_of=_rate_of,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            limit_of=self.limit,
            buckets=self._buckets,
            now=now,
            busy_defer=self.busy_defer,
            hold=self.hold,
        )

    def hold(self, claim: ClaimedDelivery) -> bool:
        """Keep a busy fast endpoint's delivery in memory to start when a slot frees."""
        endpoint_id = claim.delivery.endpoint_id
        now = self._clock()
        queue = self._held.get(endpoint_id)
        if queue is not None and len(queue) >= self._max_in_flight:
            return False
        if claim.endpoint.rate_limit_per_second:  # its token bucket decides, at claim time
            return False
        if self.latency(endpoint_id, now) >= HOLD_MAX_LATENCY_SECONDS:
            return False
        if queue is None:
            queue = self._held[endpoint_id] = deque()
        queue.append((claim, now))
        self.held_total += 1
        return True

    def busy_defer(self, endpoint_id: str) -> float:
        """Seconds to defer the next delivery of a busy endpoint (see BUSY_DEFER_*)."""
        now = self._clock()
        latency = self.latency(endpoint_id, now)
        # a fast endpoint's window opens within a few answers: pace it by the full share, or
        # by its window when it borrows past that
        slots = (
            max(self._max_in_flight, self.limit(endpoint_id))
            if latency < HOLD_MAX_LATENCY_SECONDS
            else self.windows.limit(endpoint_id)
        )
        step = max(latency, BUSY_DEFER_MIN_LATENCY_SECONDS) / slots
        slot = max(now, self._next_slot.get(endpoint_id, now)) + step
        slot = min(slot, now + BUSY_DEFER_MAX_SECONDS)
        self._next_slot[endpoint_id] = slot
        return slot - now

    def limit(self, endpoint_id: str) -> int:
        """The endpoint's window, past its share only while the worker has room
        (limits.BORROW_FACTOR)."""
        return self.windows.limit(endpoint_id, room=self._free() >= self._room_slots)

    def latency(self, endpoint_id: str, now: float) -> float:
        """Recent send time of the endpoint, or the age of its oldest send still running."""
        latency = self._latency.get(endpoint_id, 0.0)
        started = self._send_started.get(endpoint_id)
        if started:
            latency = max(latency, now - min(started))
        return latency

    # ---- one send's life --------------------------------------------------------------------
    def started(self, endpoint_id: str) -> None:
        """A delivery of the endpoint was started (its task made)."""
        self._in_flight[endpoint_id] = self._in_flight.get(endpoint_id, 0) + 1

    def sending(self, endpoint_id: str, at: float) -> None:
        """Its attempt began at `at` (the send's age counts towards the endpoint's latency)."""
        self._send_started.setdefault(endpoint_id, []).append(at)

    def answered(self, endpoint_id: str, status_code: int | None, duration_ms: float) -> None:
        """Its attempt came back: learn the endpoint's speed and open or close its window."""
        seconds = duration_ms / 1000.0
        previous = self._latency.get(endpoint_id)
        self._latency[endpoint_id] = (
            seconds if previous is None else previous + LATENCY_EWMA_WEIGHT * (seconds - previous)
        )
        if struggling(status_code):
            self.windows.shrink(endpoint_id)
        else:
            self.windows.grow(endpoint_id)

    def finished(self, endpoint_id: str, began_at: float) -> None:
        """The attempt that began at `began_at` ended (answered or cut short): free its slot
        and start the endpoint's held deliveries that now fit."""
        starts = self._send_started.get(endpoint_id)
        if starts is not None:
            starts.remove(began_at)
            if not starts:
                del self._send_started[endpoint_id]
        left = self._in_flight.get(endpoint_id, 1) - 1
        if left > 0:
            self._in_flight[endpoint_id] = left
        else:
            self._in_flight.pop(endpoint_id, None)
        self._start_held(endpoint_id)

    # ---- holding ------------------------------------------------------------------------------
    def _start_held(self, endpoint_id: str) -> None:
        """Start the endpoint's held deliveries while its window has room (one for the send
        that finished, more when the window grew, none when it shrank), and give back the ones
        held too long. Held deliveries already count against the worker's capacity, so starting
        them never exceeds it."""
        queue = self._held.get(endpoint_id)
        if queue is None:
            return
        now = self._clock()
        limit = self.limit(endpoint_id)
        while queue and self._in_flight.get(endpoint_id, 0) < limit:
            claim, held_at = queue.popleft()
            self.held_total -= 1
            if self._stopping() or now - held_at > self._max_hold_seconds:
                self._stale.append(claim.delivery.id)
                self._wake()
                continue
            self._start(claim)
        if not queue:
            del self._held[endpoint_id]

    def sweep(self) -> None:
        """Mark for giving back the held deliveries whose endpoint has not freed a slot in
        time."""
        if not self.held_total:
            return
        oldest_allowed = self._clock() - self._max_hold_seconds
        for endpoint_id in list(self._held):
            queue = self._held[endpoint_id]
            while queue and queue[0][1] < oldest_allowed:
                claim, _ = queue.popleft()
                self.held_total -= 1
                self._stale.append(claim.delivery.id)
            if not queue:
                del self._held[endpoint_id]

    def take_stale(self) -> list[str]:
        """The ids held too long, to give back (an empty list when none: do not change it)."""
        stale = self._stale
        if stale:
            self._stale = []
        return stale

    def take_all_held(self) -> list[str]:
        """Every held delivery's id, none held afterwards (stopping)."""
        ids = [claim.delivery.id for queue in self._held.values() for claim, _ in queue]
        self._held.clear()
        self.held_total = 0
        return ids


__all__ = [
    "BUSY_DEFER_MAX_SECONDS",
    "HOLD_MAX_LATENCY_SECONDS",
    "EndpointPacer",
    "max_hold_seconds",
]
