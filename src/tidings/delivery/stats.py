"""A worker hands its endpoints' attempt counts to the store every STATS_SECONDS (and once more
when it stops), for the console's health at a glance (`tidings.endpoint_health`). Attempts are
counted in memory as they happen (`Recorder.record`, no I/O on the delivery path); a hand-over
that fails is kept and tried again with the next one. A worker killed outright loses at most
the last STATS_SECONDS of counts: these are figures for a glance, not the delivery record
(which the attempts table holds, written with each outcome)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from tidings.clock import Clock
from tidings.endpoint_health import Recorder
from tidings.store.base import StoreError
from tidings.store.types import EndpointHour

log = logging.getLogger("tidings.delivery.stats")

STATS_SECONDS = 5.0
KEEP_SECONDS = 2 * 86_400.0


class StatsStore(Protocol):
    async def add_endpoint_stats(
        self, hours: Sequence[EndpointHour], *, forget_before: float
    ) -> None: ...


async def _hand_over(store: StatsStore, recorder: Recorder, now: float) -> None:
    hours = recorder.take()
    if not hours:
        return
    try:
        await store.add_endpoint_stats(hours, forget_before=now - KEEP_SECONDS)
    except StoreError:
        recorder.put_back(hours)
        log.warning("endpoint stats not recorded", exc_info=True, extra={"action": "worker.stats"})


async def run_stats(
    store: StatsStore,
    clock: Clock,
    recorder: Recorder,
    stop: asyncio.Event,
    *,
    interval_seconds: float = STATS_SECONDS,
) -> None:
    """Hand over every `interval_seconds` until `stop` is set or the task is cancelled, then
    once more."""
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
            await _hand_over(store, recorder, clock())
    finally:
        with contextlib.suppress(StoreError, asyncio.CancelledError):
            await asyncio.shield(_hand_over(store, recorder, clock()))


__all__ = ["STATS_SECONDS", "StatsStore", "run_stats"]
