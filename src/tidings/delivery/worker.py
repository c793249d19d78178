"""The delivery worker: claims due deliveries with a lease, renders and signs them, sends them,
and writes what happened back in batches (contract §6).

Shape (after procrastinate's worker): one `stop` event; background tasks (claim loop, outcome
flusher, retention) supervised by `run`; the final writes shielded from cancellation.

- Claiming: woken by the store (publish, resume, replay, release) or by a short idle poll that
  also picks up retries whose time has come. It never claims more than it can start at once
  (free global capacity), so no lease ticks away while a delivery waits in memory. Full batches
  are followed by another claim at once.
- Fairness: each endpoint has at most `endpoint_max_in_flight` deliveries in flight (fewer
  while it is new to this worker or struggling: `limits.EndpointWindows`) and, with
  `rateLimitPerSecond`, a token bucket. Claimed deliveries over an endpoint's share go straight
  back to the store, due a moment later, so a slow endpoint holds only its own share.
- Outcomes: collected from finished attempts and written with one `record_outcomes` call per
  small batch (every `flush_interval_seconds` or `flush_max_outcomes`). The endpoint health that
  comes back drives auto-pause; a 410 pauses at once; a delivery out of attempts is `failed` and
  raises `webhook.delivery_failed_terminal`. A meta delivery never raises another meta event.
- Stop: no more claims; in-flight sends get `shutdown_grace_seconds` to finish; whatever was cut
  short is released (due now); outcomes are flushed; the HTTP session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tidings import formats, policies
from tidings.clock import Clock, system_clock
from tidings.config import (
    CLAIM_BATCH_SIZE,
    DEFAULT_RETRY_SCHEDULE_SECONDS,
    DELIVERY_TIMEOUT_SECONDS,
    ENDPOINT_MAX_IN_FLIGHT,
    LEASE_MARGIN_SECONDS,
    PAUSE_AFTER_FAILURES,
    PAUSE_AFTER_SECONDS,
    RETENTION_DAYS,
    RETRY_JITTER_FRACTION,
    WORKER_CONCURRENCY,
)
from tidings.delivery import meta
from tidings.delivery.limits import (
    BORROW_FACTOR,
    ROOM_SHARE,
    EndpointWindows,
    TokenBucket,
    admit,
    struggling,
)
from tidings.delivery.metrics import DeliveryMetrics
from tidings.delivery.retention import PURGE_INTERVAL_SECONDS, run_retention
from tidings.delivery.sender import Sender, SendResult, describe_error
from tidings.models import (
    Attempt,
    AttemptOutcome,
    ClaimedDelivery,
    DeliveryStatus,
    EndpointHealth,
    EndpointStatus,
)
from tidings.store.base import Store, StoreError

log = logging.getLogger("tidings.delivery.worker")

POLL_INTERVAL_SECONDS = 1.0
FLUSH_INTERVAL_SECONDS = 0.02
FLUSH_MAX_OUTCOMES = 250
CLAIM_COALESCE_SECONDS = 0.01
MIN_IDLE_WAIT_SECONDS = 0.002
MAX_TRACKED_DEFERRALS = 10_000
# A busy endpoint whose sends take less than this keeps up to `endpoint_max_in_flight` extra
# claimed deliveries in memory and starts one as each send finishes (no round trip to the
# store); slower endpoints' extras go back to the store.
HOLD_MAX_LATENCY_SECONDS = 1.0
STORE_RETRY_SECONDS = 0.5
STORE_WRITE_TRIES = 6
BODY_CACHE_SIZE = 1024
# A busy endpoint's extra deliveries go back to the store spaced by the time one of its slots
# is expected to free up (its send time over its slot count), so a fast endpoint's come back
# almost at once and a hung endpoint's are spread out (at most this far) instead of being
# claimed and released round and round.
BUSY_DEFER_MIN_LATENCY_SECONDS = 0.01
BUSY_DEFER_MAX_SECONDS = 30.0
LATENCY_EWMA_WEIGHT = 0.2
# The lease outlives the delivery timeout by this share of the margin, so a dead worker's
# delivery is claimed again (after at most one idle poll) within timeout + margin.
LEASE_MARGIN_SHARE = 0.8
# How far below the earliest due time of its last claim a worker's next claim starts looking
# (see Worker.__init__).
FLOOR_SLACK_SECONDS = 1.0


def lease_seconds_for(delivery_timeout_seconds: float, lease_margin_seconds: float) -> float:
    return delivery_timeout_seconds + LEASE_MARGIN_SHARE * lease_margin_seconds


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt done, waiting to be written."""

    claim: ClaimedDelivery
    outcome: AttemptOutcome
    gone: bool  # the endpoint answered 410


def decide_outcome(
    claim: ClaimedDelivery,
    result: SendResult,
    started_at: float,
    *,
    retry_schedule: Sequence[float],
    jitter_fraction: float,
    rng: random.Random,
) -> Finished:
    """What one attempt leads to (pure, handed the attempt's start time)."""
    delivery = claim.delivery
    number = delivery.attempt_count + 1
    kind = policies.classify_response(result.status_code)
    status = DeliveryStatus.SUCCEEDED
    next_attempt_at: float | None = None
    if kind != "success":
        retry_after = None
        if policies.honours_retry_after(result.status_code):
            retry_after = policies.parse_retry_after(result.retry_after, started_at)
        delay = policies.retry_delay(number, retry_schedule, jitter_fraction, rng, retry_after)
        if delay is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.PENDING
            next_attempt_at = started_at + delay
    attempt = Attempt(
        delivery_id=delivery.id,
        number=number,
        started_at=started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        error=result.error,
        response_excerpt=result.response_excerpt,
        series=delivery.series,
    )
    outcome = AttemptOutcome(
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        attempt=attempt,
        status=status,
        next_attempt_at=next_attempt_at,
        success=kind == "success",
        last_status_code=result.status_code,
        last_error=result.error,
    )
    return Finished(claim=claim, outcome=outcome, gone=kind == "gone")


def _log_crash(task: asyncio.Task[None], message: str, action: str) -> None:
    """Log what a finished background task raised: nothing else reads it (what the task held
    stays leased until the lease lapses, and another claim picks it up)."""
    if not task.cancelled() and task.exception() is not None:
        log.error(message, exc_info=task.exception(), extra={"action": action})


class Worker:
    def __init__(
        self,
        store: Store,
        catalog: Any,
        publisher: meta.MetaPublisher,
        sender: Sender,
        *,
        worker_id: str,
        clock: Clock = system_clock,
        delivery_timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE_SECONDS,
        jitter_fraction: float = RETRY_JITTER_FRACTION,
        pause_after_failures: int = PAUSE_AFTER_FAILURES,
        pause_after_seconds: float = PAUSE_AFTER_SECONDS,
        concurrency: int = WORKER_CONCURRENCY,
        claim_batch_size: int = CLAIM_BATCH_SIZE,
        endpoint_max_in_flight: int = ENDPOINT_MAX_IN_FLIGHT,
        retention_days: float = RETENTION_DAYS,
        lease_margin_seconds: float = LEASE_MARGIN_SECONDS,
        rng: random.Random | None = None,
        metrics: DeliveryMetrics | None = None,
        poll_interval_seconds: float = POLL_INTERVAL_SECONDS,
        flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS,
        flush_max_outcomes: int = FLUSH_MAX_OUTCOMES,
        shutdown_grace_seconds: float | None = None,
        retention_interval_seconds: float = PURGE_INTERVAL_SECONDS,
        endpoint_borrow_factor: int = BORROW_FACTOR,
    ) -> None:
        if concurrency < 1 or claim_batch_size < 1 or endpoint_max_in_flight < 1:
            raise ValueError("concurrency, claim batch size and per-endpoint limit must be >= 1")
        self.store = store
        self.catalog = catalog
        self.publisher = publisher
        self.sender = sender
        self.worker_id = worker_id
        self.clock = clock
        self.delivery_timeout_seconds = delivery_timeout_seconds
        self.retry_schedule = tuple(retry_schedule)
        self.jitter_fraction = jitter_fraction
        self.pause_after_failures = pause_after_failures
        self.pause_after_seconds = pause_after_seconds
        self.concurrency = concurrency
        self.claim_batch_size = claim_batch_size
        self.endpoint_max_in_flight = endpoint_max_in_flight
        self.retention_days = retention_days
        self.lease_seconds = lease_seconds_for(delivery_timeout_seconds, lease_margin_seconds)
        self.rng = rng if rng is not None else random.Random()
        self.metrics = metrics if metrics is not None else DeliveryMetrics.shared()
        self.poll_interval_seconds = poll_interval_seconds
        self.flush_interval_seconds = flush_interval_seconds
        self.flush_max_outcomes = max(1, flush_max_outcomes)
        self.shutdown_grace_seconds = (
            delivery_timeout_seconds + 1.0
            if shutdown_grace_seconds is None
            else shutdown_grace_seconds
        )
        self.retention_interval_seconds = retention_interval_seconds

        self._wakeup = asyncio.Event()
        self._capacity = asyncio.Event()
        self._outcome_ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}
        self._windows = EndpointWindows(
            endpoint_max_in_flight, borrow_factor=endpoint_borrow_factor
        )
        self._buckets: dict[str, TokenBucket] = {}
        self._finished: list[Finished] = []
        self._abandoned: list[str] = []
        self._flushing_done = False
        self._bodies: OrderedDict[tuple[str, str, str, int], bytes] = OrderedDict()
        self._latency: dict[str, float] = {}  # endpoint id -> EWMA of send seconds
        self._send_started: dict[str, list[float]] = {}  # endpoint id -> starts in flight
        self._next_slot: dict[str, float] = {}  # endpoint id -> last deferral handed out
        self._held: dict[str, deque[tuple[ClaimedDelivery, float]]] = {}
        self._held_total = 0
        self._stale: list[str] = []  # held too long: to give back
        self._releasing: set[asyncio.Task[None]] = set()  # deferrals being written
        self._stopping = False
        self._stop: asyncio.Event | None = None
        # a held delivery starts within this long of its claim, or goes back: holding is for
        # endpoints whose slots free up within HOLD_MAX_LATENCY_SECONDS (an endpoint new to
        # this worker that turns out to hang must not keep worker capacity for its timeout),
        # and the lease must still cover a whole send and the write after it
        self._max_hold_seconds = max(
            0.05,
            min(HOLD_MAX_LATENCY_SECONDS, 0.5 * (self.lease_seconds - delivery_timeout_seconds)),
        )
        self._deferred_due: list[float] = []  # heap of when deliveries given back come due
        self._last_claim_at = 0.0
        # Claims scan the due deliveries from a floor: FLOOR_SLACK_SECONDS before the earliest
        # due time the last claim took. Nothing earlier was claimable then, and what becomes
        # claimable later is due at its write's "now" or after (new events, retries, deliveries
        # given back), so a claim from the floor skips the deliveries already sent, whose index
        # entries a scan from the start reads until VACUUM (more with every delivery drained).
        # The slack covers publishes that commit out of the order of their timestamps and
        # clocks a little apart; anything else below the floor (a dead worker's lease running
        # out, a send that outlasted the slack and is retried at once) is found by a claim
        # from the start, made at least twice per idle poll.
        self._due_from = -math.inf
        self._full_scan_at = -math.inf
        # below this much free capacity a claim waits CLAIM_COALESCE_SECONDS first, so
        # finishing sends do not each trigger a tiny claim
        self._min_claim = max(1, min(claim_batch_size, concurrency) // 4)

    # ---- public ---------------------------------------------------------------------------
    def wake(self) -> None:
        """Deliveries may be due: claim now rather than at the next poll."""
        self._wakeup.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, then stop gracefully (see the module docstring)."""
        self._stop = stop
        flusher = asyncio.create_task(self._flush_loop(), name="tidings.worker.flush")
        background: list[asyncio.Task[None]] = []
        if self.retention_days > 0:
            background.append(
                asyncio.create_task(
                    run_retention(
                        self.store,
                        self.clock,
                        self.retention_days,
                        stop,
                        interval_seconds=self.retention_interval_seconds,
                    ),
                    name="tidings.worker.retention",
                )
            )
        log.info("worker started", extra={"action": "worker.start", "worker_id": self.worker_id})
        try:
            await self._claim_loop(stop)
        finally:
            shutdown = asyncio.create_task(self._shutdown(flusher, background))
            try:
                await asyncio.shield(shutdown)
            except asyncio.CancelledError:
                await shutdown  # cancelled again while stopping: still finish the writes
                raise
            log.info("worker stopped", extra={"action": "worker.stop", "worker_id": self.worker_id})

    # ---- claiming --------------------------------------------------------------------------
    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._sweep_held()
            if self._stale:
                stale, self._stale = self._stale, []
                self._release_soon(stale, self.clock())
            free = self.concurrency - len(self._tasks) - self._held_total
            if free <= 0:
                self._capacity.clear()
                await self._wait_any(stop, self._capacity, self._idle_wait())
                continue
            if free < self._min_claim and self._tasks:
                # let a few more sends finish so one claim serves them, but only briefly:
                # sends that hang must not delay claims for everyone else
                await asyncio.sleep(CLAIM_COALESCE_SECONDS)
                free = max(1, self.concurrency - len(self._tasks) - self._held_total)
            limit = min(self.claim_batch_size, free)
            self._wakeup.clear()
            now = self._last_claim_at = self.clock()
            due_from = self._claim_floor(now)
            try:
                claims = await self.store.claim_due(
                    self.worker_id, now, self.lease_seconds, limit, due_from
                )
            except StoreError:
                log.warning("claim failed", exc_info=True, extra={"action": "worker.claim_failed"})
                await self._wait_any(stop, self._wakeup, STORE_RETRY_SECONDS)
                continue
            earliest = min(
                (d for c in claims if (d := c.delivery.next_attempt_at) is not None), default=None
            )
            if earliest is not None:  # (a claimed delivery always has a due time)
                self._due_from = max(due_from, earliest - FLOOR_SLACK_SECONDS)
            started = await self._dispatch(claims, now) if claims else 0
            if len(claims) < limit:
                await self._wait_any(stop, self._wakeup, self._idle_wait())
            elif started == 0:
                # a full batch that all went back (deferred into the future): the next claim
                # gets other deliveries, so claim again, but let the sends run first
                await asyncio.sleep(0)

    def _claim_floor(self, now: float) -> float:
        """Where this claim's scan starts: the floor, or the start of the queue when the last
        claim from the start is half an idle poll old (or the clock went back)."""
        if now - self._full_scan_at >= self.poll_interval_seconds / 2 or now < self._full_scan_at:
            self._full_scan_at = now
            return -math.inf
        return self._due_from

    def _idle_wait(self) -> float:
        """The idle poll, shortened to when the next delivery this worker gave back comes due
        (those due by the last claim were claimable then and are forgotten)."""
        heap = self._deferred_due
        while heap and heap[0] <= self._last_claim_at:
            heapq.heappop(heap)
        if not heap:
            return self.poll_interval_seconds
        until = heap[0] - self.clock()
        return min(self.poll_interval_seconds, max(MIN_IDLE_WAIT_SECONDS, until))

    def _endpoint_latency(self, endpoint_id: str, now: float) -> float:
        """Recent send time of the endpoint, or the age of its oldest send still running."""
        latency = self._latency.get(endpoint_id, 0.0)
        started = self._send_started.get(endpoint_id)
        if started:
            latency = max(latency, now - min(started))
        return latency

    def _hold(self, claim: ClaimedDelivery) -> bool:
        """Keep a busy fast endpoint's delivery in memory to start when a slot frees."""
        endpoint_id = claim.delivery.endpoint_id
        now = self.clock()
        queue = self._held.get(endpoint_id)
        if queue is not None and len(queue) >= self.endpoint_max_in_flight:
            return False
        if claim.endpoint.rate_limit_per_second:  # its token bucket decides, at claim time
            return False
        if self._endpoint_latency(endpoint_id, now) >= HOLD_MAX_LATENCY_SECONDS:
            return False
        if queue is None:
            queue = self._held[endpoint_id] = deque()
        queue.append((claim, now))
        self._held_total += 1
        return True

    def _start_held(self, endpoint_id: str) -> None:
        """A send of `endpoint_id` finished: start its held deliveries while its window has
        room (one for the send that finished, more when the window grew, none when it shrank),
        and give back the ones held too long. Held deliveries already count against the
        worker's capacity, so starting them never exceeds it."""
        queue = self._held.get(endpoint_id)
        if queue is None:
            return
        now = self.clock()
        limit = self._limit(endpoint_id)
        while queue and self._in_flight.get(endpoint_id, 0) < limit:
            claim, held_at = queue.popleft()
            self._held_total -= 1
            stopping = self._stopping or (self._stop is not None and self._stop.is_set())
            if stopping or now - held_at > self._max_hold_seconds:
                self._stale.append(claim.delivery.id)
                self._wakeup.set()
                continue
            self._start(claim)
        if not queue:
            del self._held[endpoint_id]

    def _sweep_held(self) -> None:
        """Give back held deliveries whose endpoint has not freed a slot in time."""
        if not self._held_total:
            return
        oldest_allowed = self.clock() - self._max_hold_seconds
        for endpoint_id in list(self._held):
            queue = self._held[endpoint_id]
            while queue and queue[0][1] < oldest_allowed:
                claim, _ = queue.popleft()
                self._held_total -= 1
                self._stale.append(claim.delivery.id)
            if not queue:
                del self._held[endpoint_id]

    def _room(self) -> bool:
        """Whether endpoints may borrow past their share (limits.BORROW_FACTOR)."""
        free = self.concurrency - len(self._tasks) - self._held_total
        return free >= ROOM_SHARE * self.concurrency

    def _limit(self, endpoint_id: str) -> int:
        """The endpoint's window, past its share only while the worker has room."""
        return self._windows.limit(endpoint_id, room=self._room())

    def _take_all_held(self) -> list[str]:
        ids = [claim.delivery.id for queue in self._held.values() for claim, _ in queue]
        self._held.clear()
        self._held_total = 0
        return ids

    def _busy_defer(self, endpoint_id: str) -> float:
        """Seconds to defer the next delivery of a busy endpoint (see BUSY_DEFER_*)."""
        now = self.clock()
        latency = self._endpoint_latency(endpoint_id, now)
        # a fast endpoint's window opens within a few answers: pace it by the full share, or
        # by its window when it borrows past that
        slots = (
            max(self.endpoint_max_in_flight, self._limit(endpoint_id))
            if latency < HOLD_MAX_LATENCY_SECONDS
            else self._windows.limit(endpoint_id)
        )
        step = max(latency, BUSY_DEFER_MIN_LATENCY_SECONDS) / slots
        slot = max(now, self._next_slot.get(endpoint_id, now)) + step
        slot = min(slot, now + BUSY_DEFER_MAX_SECONDS)
        self._next_slot[endpoint_id] = slot
        return slot - now

    def _observe_latency(self, endpoint_id: str, duration_ms: float) -> None:
        seconds = duration_ms / 1000.0
        previous = self._latency.get(endpoint_id)
        self._latency[endpoint_id] = (
            seconds if previous is None else previous + LATENCY_EWMA_WEIGHT * (seconds - previous)
        )

    @staticmethod
    async def _wait_any(stop: asyncio.Event, event: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(event.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _dispatch(self, claims: list[ClaimedDelivery], now: float) -> int:
        """Start what may start now, give the rest back; answers how many started."""
        sendable: list[ClaimedDelivery] = []
        not_active: list[str] = []
        for claim in claims:
            if (
                claim.endpoint.status != EndpointStatus.ACTIVE
                or claim.endpoint.deleted_at is not None
            ):
                not_active.append(claim.delivery.id)
            else:
                sendable.append(claim)
        start, defer = admit(
            sendable,
            endpoint_of=lambda c: c.delivery.endpoint_id,
            rate_of=lambda c: c.endpoint.rate_limit_per_second,
            in_flight=self._in_flight,
            max_in_flight=self.endpoint_max_in_flight,
            limit_of=self._limit,
            buckets=self._buckets,
            now=asyncio.get_running_loop().time(),
            busy_defer=self._busy_defer,
            hold=self._hold,
        )
        for claim in start:
            self._start(claim)
        back = [(claim.delivery.id, now + delay) for claim, delay in defer]
        back += [(delivery_id, now + self.poll_interval_seconds) for delivery_id in not_active]
        if back:  # one store call, each with its own due time, off the claim loop's path
            self._release_soon([i for i, _ in back], [due for _, due in back])
            for due in sorted({due for _, due in back}):
                if len(self._deferred_due) >= MAX_TRACKED_DEFERRALS:
                    break
                heapq.heappush(self._deferred_due, due)
        return len(start)

    def _release_soon(
        self, delivery_ids: list[str], next_attempt_at: float | Sequence[float]
    ) -> None:
        """Give deliveries back without the claim loop waiting for it: they stay leased to this
        worker until the write lands, so no claim (here or elsewhere) takes them meanwhile, and
        the next claim need not wait for a round trip that decides nothing it needs."""
        task = asyncio.create_task(
            self._release(delivery_ids, next_attempt_at), name="tidings.worker.release"
        )
        self._releasing.add(task)
        task.add_done_callback(self._release_done)

    def _release_done(self, task: asyncio.Task[None]) -> None:
        self._releasing.discard(task)
        _log_crash(task, "release task crashed", "worker.release_crashed")

    async def _release(
        self, delivery_ids: list[str], next_attempt_at: float | Sequence[float]
    ) -> None:
        try:
            await self.store.release(self.worker_id, delivery_ids, next_attempt_at)
        except StoreError:  # the lease expires and another claim picks them up
            log.warning("release failed", exc_info=True, extra={"action": "worker.release_failed"})

    def _start(self, claim: ClaimedDelivery) -> None:
        endpoint_id = claim.delivery.endpoint_id
        self._in_flight[endpoint_id] = self._in_flight.get(endpoint_id, 0) + 1
        task = asyncio.create_task(self._deliver(claim), name=f"deliver:{claim.delivery.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._capacity.set()
        _log_crash(task, "delivery task crashed", "worker.task_crashed")

    # ---- one delivery ----------------------------------------------------------------------
    async def _deliver(self, claim: ClaimedDelivery) -> None:
        endpoint_id = claim.delivery.endpoint_id
        started_at = self.clock()
        self._send_started.setdefault(endpoint_id, []).append(started_at)
        try:
            result = await self._attempt(claim, started_at)
            self.metrics.observe_attempt(result.status_code, result.duration_ms)
            self._observe_latency(endpoint_id, result.duration_ms)
            if struggling(result.status_code):
                self._windows.shrink(endpoint_id)
            else:
                self._windows.grow(endpoint_id)
            finished = decide_outcome(
                claim,
                result,
                started_at,
                retry_schedule=self.retry_schedule,
                jitter_fraction=self.jitter_fraction,
                rng=self.rng,
            )
            self._finished.append(finished)
            self._outcome_ready.set()
        except asyncio.CancelledError:
            self._abandoned.append(claim.delivery.id)
            raise
        finally:
            starts = self._send_started.get(endpoint_id)
            if starts is not None:
                starts.remove(started_at)
                if not starts:
                    del self._send_started[endpoint_id]
            left = self._in_flight.get(endpoint_id, 1) - 1
            if left > 0:
                self._in_flight[endpoint_id] = left
            else:
                self._in_flight.pop(endpoint_id, None)
            self._start_held(endpoint_id)

    async def _attempt(self, claim: ClaimedDelivery, now: float) -> SendResult:
        delivery, event, endpoint = claim.delivery, claim.event, claim.endpoint
        try:
            version = delivery.schema_version or event.schema_version
            body = self._body(claim, version)
            headers = formats.sign_headers(
                endpoint.format,
                event=event,
                body=body,
                delivery_id=delivery.id,
                attempt=delivery.attempt_count + 1,
                secrets=endpoint.valid_secrets(now),
                now=now,
                extra_headers=endpoint.headers,
                schema_version=version,
            )
        except Exception as exc:  # a delivery that cannot be rendered is a failed attempt
            log.warning(
                "delivery not rendered",
                extra={
                    "action": "delivery.render_failed",
                    "delivery_id": delivery.id,
                    "error": describe_error(exc),
                },
            )
            return SendResult(None, describe_error(exc), None, 0.0)
        return await self.sender.send(endpoint.url, body, headers)

    def _body(self, claim: ClaimedDelivery, version: int) -> bytes:
        """The body bytes, rendered once per (event, format, version) and shared by a fan-out."""
        event, fmt = claim.event, claim.endpoint.format
        key = (event.organization_id, event.id, fmt, version)
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        data = event.data
        if version != event.schema_version:
            data = self.catalog.convert(event.type, event.data, event.schema_version, version)
        body = formats.render_body(fmt, event=event, data=data, schema_version=version)
        self._bodies[key] = body
        while len(self._bodies) > BODY_CACHE_SIZE:
            self._bodies.popitem(last=False)
        return body

    # ---- writing outcomes ------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            if not self._finished:
                if self._flushing_done:
                    return
                self._outcome_ready.clear()
                await self._outcome_ready.wait()
                continue
            if len(self._finished) < self.flush_max_outcomes and not self._flushing_done:
                await asyncio.sleep(self.flush_interval_seconds)
            batch = self._finished[: self.flush_max_outcomes]
            del self._finished[: len(batch)]
            try:
                await self._write(batch)
            except Exception:  # never let the flusher die: those leases expire and retry
                log.exception("outcomes not written", extra={"action": "worker.flush_failed"})

    async def _write(self, batch: list[Finished]) -> None:
        for attempt in range(STORE_WRITE_TRIES):
            now = self.clock()
            try:
                health = await self.store.record_outcomes(
                    self.worker_id, [f.outcome for f in batch], now
                )
            except StoreError:
                log.warning(
                    "record_outcomes failed",
                    exc_info=True,
                    extra={"action": "worker.record_failed", "try": attempt + 1},
                )
                await asyncio.sleep(STORE_RETRY_SECONDS * (attempt + 1))
                continue
            await self._after_record(batch, health, now)
            return
        log.error(
            "outcomes dropped after retries; their leases will expire and they are retried",
            extra={"action": "worker.outcomes_dropped", "count": len(batch)},
        )

    async def _after_record(
        self, batch: list[Finished], health: list[EndpointHealth], now: float
    ) -> None:
        by_endpoint = {h.endpoint_id: h for h in health}
        paused = {h.endpoint_id for h in health if h.status == EndpointStatus.PAUSED}
        paused |= await self._apply_pauses(batch, by_endpoint, now)
        for f in batch:
            outcome = f.outcome
            if outcome.status == DeliveryStatus.SUCCEEDED:
                self.metrics.observe_outcome("succeeded")
            elif outcome.status == DeliveryStatus.FAILED:
                self.metrics.observe_outcome("failed")
                if not f.claim.delivery.is_meta:
                    await self._publish_terminal(f, now)
            elif outcome.endpoint_id in paused:
                self.metrics.observe_outcome("held")
            else:
                self.metrics.observe_outcome("retried")

    async def _apply_pauses(
        self, batch: list[Finished], health: dict[str, EndpointHealth], now: float
    ) -> set[str]:
        """Pause endpoints that answered 410 or crossed the auto-pause rule; answers those this
        call paused. The meta event is raised only when a non-meta delivery failed there."""
        gone: set[str] = set()
        failed_non_meta: dict[str, Finished] = {}
        for f in batch:
            if f.gone:
                gone.add(f.outcome.endpoint_id)
            if not f.outcome.success and not f.claim.delivery.is_meta:
                failed_non_meta.setdefault(f.outcome.endpoint_id, f)
        endpoints = {f.outcome.endpoint_id: f.claim.endpoint for f in batch}
        paused_now: set[str] = set()
        for endpoint_id, h in health.items():
            if h.status != EndpointStatus.ACTIVE or endpoint_id not in endpoints:
                continue
            reason: str | None = meta.PAUSE_REASON_GONE if endpoint_id in gone else None
            if reason is None:
                reason = policies.should_pause(
                    h.failure_streak,
                    h.failing_since,
                    now,
                    pause_after_failures=self.pause_after_failures,
                    pause_after_seconds=self.pause_after_seconds,
                )
            if reason is None:
                continue
            try:
                changed = await self.store.pause_endpoint(
                    h.organization_id, endpoint_id, reason, now
                )
            except StoreError:
                log.warning("pause failed", exc_info=True, extra={"action": "worker.pause_failed"})
                continue
            if not changed:
                continue
            paused_now.add(endpoint_id)
            log.warning(
                "endpoint auto-paused",
                extra={
                    "action": "endpoint.auto_paused",
                    "endpoint_id": endpoint_id,
                    "organization_id": h.organization_id,
                    "reason": reason,
                    "failure_streak": h.failure_streak,
                },
            )
            if endpoint_id in failed_non_meta:
                envelope, key = meta.endpoint_auto_paused(
                    self.catalog, endpoints[endpoint_id], h, reason, now
                )
                await meta.publish_meta(self.publisher, envelope, key)
        return paused_now

    async def _publish_terminal(self, f: Finished, now: float) -> None:
        outcome = f.outcome
        log.warning(
            "delivery failed for good",
            extra={
                "action": "delivery.failed_terminal",
                "delivery_id": outcome.delivery_id,
                "endpoint_id": outcome.endpoint_id,
            },
        )
        envelope, key = meta.delivery_failed_terminal(
            self.catalog,
            f.claim.delivery,
            f.claim.event,
            f.claim.endpoint,
            attempts=outcome.attempt.number,
            last_status_code=outcome.last_status_code,
            last_error=outcome.last_error,
            failed_at=now,
        )
        await meta.publish_meta(self.publisher, envelope, key)

    # ---- stopping ----------------------------------------------------------------------------
    async def _shutdown(
        self, flusher: asyncio.Task[None], background: list[asyncio.Task[None]]
    ) -> None:
        self._stopping = True
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
        unstarted = self._take_all_held() + self._stale
        self._stale = []
        if unstarted:
            await self._release(unstarted, self.clock())
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._abandoned or self._stale:
            ids = self._abandoned + self._stale
            self._abandoned, self._stale = [], []
            log.info(
                "releasing unfinished deliveries",
                extra={"action": "worker.release_unfinished", "count": len(ids)},
            )
            await self._release(ids, self.clock())
        self._flushing_done = True
        self._outcome_ready.set()
        with contextlib.suppress(Exception):
            await flusher
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        try:
            await self.sender.close()
        except Exception:
            log.warning("sender close failed", exc_info=True, extra={"action": "worker.close"})


__all__ = ["Finished", "Worker", "decide_outcome", "lease_seconds_for"]
