"""The delivery worker: the conductor of delivery in one process (contract §6). It claims due
deliveries (`claiming`), starts the ones each endpoint's pacing admits (`pacing`), runs one task
per attempt (`attempt`: render, sign, send, decide), and hands each finished attempt to the
outcome writer (`outcomes`), whose written batches lead to pauses and meta events
(`aftermath`). It is configured by one `WorkerSettings` (`settings`).

Shape (after procrastinate's worker): one `stop` event; background tasks (claim loop, outcome
writer, retention) supervised by `run`; the final writes shielded from cancellation.

- Claiming: woken by the store (publish, resume, replay, release) or by a short idle poll that
  also picks up retries whose time has come. It never claims more than it can start at once
  (free capacity, counting the deliveries held in memory), so no lease ticks away while a
  delivery waits. Full batches are followed by another claim at once.
- Fairness: each endpoint has at most `endpoint_max_in_flight` deliveries in flight (fewer
  while it is new to this worker or struggling) and, with `rateLimitPerSecond`, a token bucket.
  Claimed deliveries over an endpoint's share are held in memory (fast endpoints) or go back to
  the store, due a moment later, so a slow endpoint holds only its own share.
- Stop: no more claims; in-flight sends get `shutdown_grace_seconds` to finish; whatever was cut
  short is released (due now); outcomes are flushed; the HTTP session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Protocol

from tidings import tracing
from tidings.catalog import Catalog
from tidings.clock import Clock, system_clock
from tidings.delivery.aftermath import Aftermath, PauseStore
from tidings.delivery.attempt import Attempter
from tidings.delivery.blocked import BlockedStore, run_blocked_watch
from tidings.delivery.claiming import Claimer, ClaimStore
from tidings.delivery.meta import MetaPublisher
from tidings.delivery.metrics import DeliveryMetrics
from tidings.delivery.outcomes import OutcomeStore, OutcomeWriter
from tidings.delivery.pacing import EndpointPacer
from tidings.delivery.presence import PresenceStore, run_presence
from tidings.delivery.retention import HistoryStore, run_retention
from tidings.delivery.sender import Sender
from tidings.delivery.settings import STORE_RETRY_SECONDS, WorkerSettings
from tidings.delivery.stats import StatsStore, run_stats
from tidings.endpoint_health import Recorder
from tidings.models import ClaimedDelivery, EndpointStatus
from tidings.store.base import StoreError

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger("tidings.delivery.worker")

# Below a quarter of a batch of free capacity, a claim first waits this long, so finishing
# sends do not each trigger a tiny claim.
CLAIM_COALESCE_SECONDS = 0.01


class WorkerStore(
    ClaimStore,
    OutcomeStore,
    PauseStore,
    HistoryStore,
    PresenceStore,
    StatsStore,
    BlockedStore,
    Protocol,
):
    """Everything the worker asks of the store."""


class Worker:
    """Delivers until stopped (see the module docstring)."""

    def __init__(
        self,
        store: WorkerStore,
        catalog: Catalog,
        publisher: MetaPublisher,
        sender: Sender,
        settings: WorkerSettings,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.stats = Recorder()
        self.clock = clock
        self.metrics = metrics if metrics is not None else DeliveryMetrics.shared()
        self._store = store
        self._catalog = catalog
        self._publisher = publisher
        self._concurrency = settings.concurrency
        self._claim_batch_size = settings.claim_batch_size
        self._min_claim = max(1, min(settings.claim_batch_size, settings.concurrency) // 4)
        self._wakeup = asyncio.Event()
        self._capacity = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._abandoned: list[str] = []  # cut short at shutdown: to release
        self._stopping = False
        self._stop: asyncio.Event | None = None
        self._claimer = Claimer(store, settings, clock)
        self.pacer = EndpointPacer(
            settings,
            clock,
            start=self._start,
            wake=self._wakeup.set,
            stopping=self._is_stopping,
            free=self._free,
        )
        self._attempter = Attempter(
            catalog, sender, settings, rng if rng is not None else random.Random()
        )
        self._outcomes = OutcomeWriter(
            store,
            settings,
            clock,
            Aftermath(store, catalog, publisher, self.metrics, settings),
        )

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
        writer = asyncio.create_task(self._outcomes.run(), name="tidings.worker.flush")
        background: list[asyncio.Task[None]] = []
        settings = self.settings
        background.append(  # always: it makes the history's partitions ahead too
            asyncio.create_task(
                run_retention(
                    self._store,
                    self.clock,
                    settings.retention_days,
                    stop,
                    audit_retention_days=settings.audit_retention_days,
                    interval_seconds=settings.retention_interval_seconds,
                ),
                name="tidings.worker.retention",
            )
        )
        background.append(
            asyncio.create_task(
                run_presence(self._store, self.clock, settings.worker_id, stop),
                name="tidings.worker.presence",
            )
        )
        background.append(
            asyncio.create_task(
                run_stats(self._store, self.clock, self.stats, stop),
                name="tidings.worker.stats",
            )
        )
        background.append(
            asyncio.create_task(
                run_blocked_watch(
                    self._store,
                    self._catalog,
                    self._publisher,
                    self.clock,
                    settings.subject_blocked_after_seconds,
                    stop,
                ),
                name="tidings.worker.blocked",
            )
        )
        log.info(
            "worker started", extra={"action": "worker.start", "worker_id": settings.worker_id}
        )
        try:
            await self._claim_loop(stop)
        finally:
            shutdown = asyncio.create_task(self._shutdown(writer, background))
            try:
                await asyncio.shield(shutdown)
            except asyncio.CancelledError:
                await shutdown  # cancelled again while stopping: still finish the writes
                raise
            log.info(
                "worker stopped", extra={"action": "worker.stop", "worker_id": settings.worker_id}
            )

    # ---- claiming --------------------------------------------------------------------------
    async def _claim_loop(self, stop: asyncio.Event) -> None:
        claimer, pacer = self._claimer, self.pacer
        while not stop.is_set():
            pacer.sweep()
            stale = pacer.take_stale()
            if stale:
                claimer.give_back(stale, self.clock())
            free = self._free()
            if free <= 0:
                self._capacity.clear()
                await self._wait_any(stop, self._capacity, claimer.idle_wait())
                continue
            if free < self._min_claim and self._tasks:
                # let a few more sends finish so one claim serves them, but only briefly:
                # sends that hang must not delay claims for everyone else
                await asyncio.sleep(CLAIM_COALESCE_SECONDS)
                free = max(1, self._free())
            limit = min(self._claim_batch_size, free)
            self._wakeup.clear()
            now = self.clock()
            began = time.time_ns() if tracing.enabled else 0
            try:
                claims = await claimer.claim(limit, now)
            except StoreError:
                if tracing.enabled:
                    tracing.claim_span(began, limit, self.settings.worker_id, None)
                log.warning("claim failed", exc_info=True, extra={"action": "worker.claim_failed"})
                await self._wait_any(stop, self._wakeup, STORE_RETRY_SECONDS)
                continue
            span = (
                tracing.claim_span(began, limit, self.settings.worker_id, len(claims))
                if tracing.enabled and claims
                else None
            )
            started = self._dispatch(claims, now, span) if claims else 0
            if len(claims) < limit:
                await self._wait_any(stop, self._wakeup, claimer.idle_wait())
            elif started == 0:
                # a full batch that all went back (deferred into the future): the next claim
                # gets other deliveries, so claim again, but let the sends run first
                await asyncio.sleep(0)

    @staticmethod
    async def _wait_any(stop: asyncio.Event, event: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(event.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _dispatch(self, claims: list[ClaimedDelivery], now: float, span: Span | None = None) -> int:
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
        start, defer = self.pacer.admit(sendable, asyncio.get_running_loop().time())
        for claim in start:
            self._start(claim, span)
        back = [(claim.delivery.id, now + delay) for claim, delay in defer]
        poll = self.settings.poll_interval_seconds
        back += [(delivery_id, now + poll) for delivery_id in not_active]
        if back:  # one store call, each with its own due time, off the claim loop's path
            self._claimer.give_back([i for i, _ in back], [due for _, due in back])
            self._claimer.expect(due for _, due in back)
        return len(start)

    # ---- one delivery ----------------------------------------------------------------------
    def _start(self, claim: ClaimedDelivery, claim_span: Span | None = None) -> None:
        self.pacer.started(claim.delivery.endpoint_id)
        task = asyncio.create_task(
            self._deliver(claim, claim_span), name=f"deliver:{claim.delivery.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Free the task's capacity and log what it raised: nothing else reads it (what the
        task held stays leased until the lease lapses, and another claim picks it up)."""
        self._tasks.discard(task)
        self._capacity.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "delivery task crashed",
                exc_info=task.exception(),
                extra={"action": "worker.task_crashed"},
            )

    async def _deliver(self, claim: ClaimedDelivery, claim_span: Span | None = None) -> None:
        endpoint_id = claim.delivery.endpoint_id
        started_at = self.clock()
        pacer = self.pacer
        pacer.sending(endpoint_id, started_at)
        span: Span | None = None
        try:
            if tracing.enabled:
                span = tracing.start_attempt_span(
                    claim_span,
                    claim.event.id,
                    endpoint_id,
                    claim.delivery.id,
                    claim.delivery.attempt_count + 1,
                )
                asked = claim.endpoint.trace_context
                result = await self._attempter.send(
                    claim, started_at, tracing.trace_headers(span) if asked else None
                )
                tracing.end_attempt_span(span, result.status_code, result.error)
                span = None
            else:
                result = await self._attempter.send(claim, started_at)
            self.metrics.observe_attempt(result.status_code, result.duration_ms, endpoint_id)
            self.stats.record(
                endpoint_id,
                claim.delivery.organization_id,
                started_at,
                result.duration_ms,
                result.status_code,
                result.error,
            )
            pacer.answered(endpoint_id, result.status_code, result.duration_ms)
            self._outcomes.add(self._attempter.decide(claim, result, started_at))
        except asyncio.CancelledError:
            self._abandoned.append(claim.delivery.id)
            raise
        finally:
            if span is not None:  # cancelled mid-attempt
                tracing.end_attempt_span(span, None, "cancelled")
            pacer.finished(endpoint_id, started_at)

    def _free(self) -> int:
        """Slots neither sending nor held."""
        return self._concurrency - len(self._tasks) - self.pacer.held_total

    def _is_stopping(self) -> bool:
        return self._stopping or (self._stop is not None and self._stop.is_set())

    # ---- stopping ----------------------------------------------------------------------------
    async def _shutdown(
        self, writer: asyncio.Task[None], background: list[asyncio.Task[None]]
    ) -> None:
        self._stopping = True
        claimer, pacer = self._claimer, self.pacer
        await claimer.settle()
        unstarted = pacer.take_all_held() + pacer.take_stale()
        if unstarted:
            await claimer.release(unstarted, self.clock())
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        unfinished = self._abandoned + pacer.take_stale()
        if unfinished:
            self._abandoned = []
            log.info(
                "releasing unfinished deliveries",
                extra={"action": "worker.release_unfinished", "count": len(unfinished)},
            )
            await claimer.release(unfinished, self.clock())
        self._outcomes.close()
        with contextlib.suppress(Exception):
            await writer
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        try:
            await self._attempter.close()
        except Exception:
            log.warning("sender close failed", exc_info=True, extra={"action": "worker.close"})


__all__ = ["Worker", "WorkerStore"]
