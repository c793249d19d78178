"""The lease, both ways, for one worker: taking due deliveries (`Claimer.claim`, with the scan
floor that keeps each claim off the deliveries already sent), giving them back without an
attempt (`give_back` in the background, `release` awaited), and how long the worker may sleep
before it looks again (`idle_wait`, shortened by the due times of what it gave back).

The store owns the claim rule itself (which deliveries are due and free, in what order); this
room decides when to ask and from where.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Protocol

from tidings.clock import Clock
from tidings.delivery.settings import WorkerSettings
from tidings.models import ClaimedDelivery
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.claiming")

# How far below the earliest due time of its last claim a worker's next claim starts looking
# (see Claimer.floor).
FLOOR_SLACK_SECONDS = 1.0
# Due times of given-back deliveries remembered to shorten the idle wait; more are forgotten
# (their deliveries are then found by the next idle poll).
MAX_TRACKED_DEFERRALS = 10_000
MIN_IDLE_WAIT_SECONDS = 0.002


class ClaimStore(Protocol):
    """The part of the store that leases deliveries."""

    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]: ...

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
        *,
        now: float,
    ) -> int: ...


class Claimer:
    """Claims and gives back deliveries for one worker (see the module docstring)."""

    def __init__(self, store: ClaimStore, settings: WorkerSettings, clock: Clock) -> None:
        self._store = store
        self._worker_id = settings.worker_id
        self._lease_seconds = settings.lease_seconds
        self._poll_interval_seconds = settings.poll_interval_seconds
        self._clock = clock
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
        self._last_claim_at = 0.0
        self._deferred_due: list[float] = []  # heap of when deliveries given back come due
        self._releasing: set[asyncio.Task[None]] = set()  # give-backs being written

    async def claim(self, limit: int, now: float) -> list[ClaimedDelivery]:
        """Lease up to `limit` deliveries due at `now`. Raises StoreError."""
        self._last_claim_at = now
        due_from = self.floor(now)
        claims = await self._store.claim_due(
            self._worker_id, now, self._lease_seconds, limit, due_from
        )
        earliest = min(
            (d for c in claims if (d := c.delivery.next_attempt_at) is not None), default=None
        )
        if earliest is not None:  # (a claimed delivery always has a due time)
            self._due_from = max(due_from, earliest - FLOOR_SLACK_SECONDS)
        return claims

    def floor(self, now: float) -> float:
        """Where a claim at `now` starts its scan: the floor, or the start of the queue when the
        last claim from the start is half an idle poll old (or the clock went back)."""
        if now - self._full_scan_at >= self._poll_interval_seconds / 2 or now < self._full_scan_at:
            self._full_scan_at = now
            return -math.inf
        return self._due_from

    def expect(self, due_times: Iterable[float]) -> None:
        """Remember when deliveries given back come due, so the idle wait ends then."""
        for due in sorted(set(due_times)):
            if len(self._deferred_due) >= MAX_TRACKED_DEFERRALS:
                break
            heapq.heappush(self._deferred_due, due)

    def idle_wait(self) -> float:
        """The idle poll, shortened to when the next delivery this worker gave back comes due
        (those due by the last claim were claimable then and are forgotten)."""
        heap = self._deferred_due
        while heap and heap[0] <= self._last_claim_at:
            heapq.heappop(heap)
        if not heap:
            return self._poll_interval_seconds
        until = heap[0] - self._clock()
        return min(self._poll_interval_seconds, max(MIN_IDLE_WAIT_SECONDS, until))

    def give_back(self, delivery_ids: list[str], next_attempt_at: float | Sequence[float]) -> None:
        """Give deliveries back without the claim loop waiting for it: they stay leased to this
        worker until the write lands, so no claim (here or elsewhere) takes them meanwhile, and
        the next claim need not wait for a round trip that decides nothing it needs."""
        task = asyncio.create_task(
            self.release(delivery_ids, next_attempt_at), name="tidings.worker.release"
        )
        self._releasing.add(task)
        task.add_done_callback(self._give_back_done)

    def _give_back_done(self, task: asyncio.Task[None]) -> None:
        self._releasing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "release task crashed",
                exc_info=task.exception(),
                extra={"action": "worker.release_crashed"},
            )

    async def release(
        self, delivery_ids: list[str], next_attempt_at: float | Sequence[float]
    ) -> None:
        """Give deliveries back now, due at `next_attempt_at` (one time, or one per delivery).
        A failure is logged: the leases expire and another claim picks the deliveries up."""
        try:
            await self._store.release(
                self._worker_id, delivery_ids, next_attempt_at, now=self._clock()
            )
        except StoreError:
            log.warning("release failed", exc_info=True, extra={"action": "worker.release_failed"})

    async def settle(self) -> None:
        """Wait for the give-backs under way."""
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)


__all__ = ["FLOOR_SLACK_SECONDS", "ClaimStore", "Claimer"]
