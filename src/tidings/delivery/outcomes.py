"""Writing outcomes in batches: finished attempts are collected (`OutcomeWriter.add`) and written
with one `record_outcomes` call per small batch (after `flush_interval_seconds`, or at once when
`flush_max_outcomes` are waiting), tried again on store errors; the endpoints' health the store
answers is handed on (`after`: pauses and meta events) with the batch it belongs to.

A batch the store keeps refusing is dropped with an error log: its deliveries stay leased to this
worker until the lease runs out, and are then claimed and attempted again (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tidings.clock import Clock
from tidings.delivery.attempt import Finished
from tidings.delivery.settings import STORE_RETRY_SECONDS, WorkerSettings
from tidings.models import AttemptOutcome, EndpointHealth
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.outcomes")

STORE_WRITE_TRIES = 6

# What a written batch leads to: handed the batch, the health of the endpoints it touched and
# the time of the write.
AfterWrite = Callable[[list[Finished], list[EndpointHealth], float], Awaitable[None]]


class OutcomeStore(Protocol):
    """The part of the store that records attempts."""

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]: ...


class OutcomeWriter:
    """Batches finished attempts into store writes (see the module docstring). `run` until
    `close`; what was added before `close` is written before `run` returns."""

    def __init__(
        self, store: OutcomeStore, settings: WorkerSettings, clock: Clock, after: AfterWrite
    ) -> None:
        self._store = store
        self._worker_id = settings.worker_id
        self._flush_interval_seconds = settings.flush_interval_seconds
        self._flush_max_outcomes = settings.flush_max_outcomes
        self._clock = clock
        self._after = after
        self._finished: list[Finished] = []
        self._ready = asyncio.Event()
        self._closing = False

    def add(self, finished: Finished) -> None:
        self._finished.append(finished)
        self._ready.set()

    def close(self) -> None:
        """Write what is left without waiting for more, then let `run` return."""
        self._closing = True
        self._ready.set()

    async def run(self) -> None:
        while True:
            if not self._finished:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            if len(self._finished) < self._flush_max_outcomes and not self._closing:
                await asyncio.sleep(self._flush_interval_seconds)
            batch = self._finished[: self._flush_max_outcomes]
            del self._finished[: len(batch)]
            try:
                await self.write(batch)
            except Exception:  # never let the flusher die: those leases expire and retry
                log.exception("outcomes not written", extra={"action": "worker.flush_failed"})

    async def write(self, batch: list[Finished]) -> None:
        """Write one batch (tried STORE_WRITE_TRIES times), then hand it on."""
        for attempt in range(STORE_WRITE_TRIES):
            now = self._clock()
            try:
                health = await self._store.record_outcomes(
                    self._worker_id, [f.outcome for f in batch], now
                )
            except StoreError:
                log.warning(
                    "record_outcomes failed",
                    exc_info=True,
                    extra={"action": "worker.record_failed", "try": attempt + 1},
                )
                await asyncio.sleep(STORE_RETRY_SECONDS * (attempt + 1))
                continue
            await self._after(batch, health, now)
            return
        log.error(
            "outcomes dropped after retries; their leases will expire and they are retried",
            extra={"action": "worker.outcomes_dropped", "count": len(batch)},
        )


__all__ = ["STORE_WRITE_TRIES", "AfterWrite", "OutcomeStore", "OutcomeWriter"]
