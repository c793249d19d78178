"""A worker says it is alive: its row in `workers_seen` is upserted every PRESENCE_SECONDS and
deleted when it stops gracefully, so the operator's overview can show the workers seen
recently (a worker that died keeps its last time, and rows a day old go with the next upsert).
A store error is logged and tried again at the next interval: presence never stops delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from tidings.clock import Clock
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.presence")

PRESENCE_SECONDS = 15.0
FORGET_AFTER_SECONDS = 86_400.0


class PresenceStore(Protocol):
    """The part of the store that records workers seen."""

    async def worker_seen(
        self, worker_id: str, started_at: float, now: float, *, forget_before: float
    ) -> None: ...

    async def worker_gone(self, worker_id: str) -> None: ...


async def run_presence(
    store: PresenceStore,
    clock: Clock,
    worker_id: str,
    stop: asyncio.Event,
    *,
    interval_seconds: float = PRESENCE_SECONDS,
) -> None:
    """Say the worker is alive now and every `interval_seconds` until `stop` is set (or the task
    is cancelled), then that it is gone."""
    started_at = clock()
    try:
        while not stop.is_set():
            now = clock()
            try:
                await store.worker_seen(
                    worker_id, started_at, now, forget_before=now - FORGET_AFTER_SECONDS
                )
            except StoreError:
                log.warning("presence not recorded", exc_info=True, extra={"action": "worker.seen"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
    finally:
        with contextlib.suppress(StoreError):
            await asyncio.shield(store.worker_gone(worker_id))


__all__ = ["PRESENCE_SECONDS", "PresenceStore", "run_presence"]
