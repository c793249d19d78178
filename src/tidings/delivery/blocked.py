"""Telling an organization that an ordered subject is held back (issue 25): every little while
the worker asks the store for subjects whose oldest queued delivery has waited longer than
`subject_blocked_after_seconds` behind one that keeps failing, publishes a
`webhook.subject_blocked` for each, and marks the blocking delivery as told. The idempotency
key (blocking delivery and series) keeps several workers from telling twice; a replay starts a
new series, which may block and be told of again. A store error is logged and tried at the
next round: this never stops delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from tidings.catalog import Catalog
from tidings.clock import Clock
from tidings.delivery import meta
from tidings.models import BlockedSubject
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.blocked")

# Subjects told of per round (the longest held back first; the rest at the next round).
BATCH = 100
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 60.0


class BlockedStore(Protocol):
    async def blocked_subjects(self, cutoff: float, limit: int) -> list[BlockedSubject]: ...

    async def mark_blocked_reported(self, delivery_ids: Sequence[str], now: float) -> int: ...


def check_interval(threshold_seconds: float) -> float:
    """How often to look: a quarter of the threshold, within [1 s, 60 s]."""
    return min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, threshold_seconds / 4))


async def report_blocked(
    store: BlockedStore,
    catalog: Catalog,
    publisher: meta.MetaPublisher,
    now: float,
    threshold_seconds: float,
) -> int:
    """One round: tell of each subject held back longer than the threshold. Answers how many
    were told of."""
    told: list[str] = []
    for blocked in await store.blocked_subjects(now - threshold_seconds, BATCH):
        envelope, key = meta.subject_blocked(catalog, blocked, now)
        if await meta.publish_meta(publisher, envelope, key):
            told.append(blocked.delivery_id)
    await store.mark_blocked_reported(told, now)
    return len(told)


async def run_blocked_watch(
    store: BlockedStore,
    catalog: Catalog,
    publisher: meta.MetaPublisher,
    clock: Clock,
    threshold_seconds: float,
    stop: asyncio.Event,
) -> None:
    """`report_blocked` every `check_interval(threshold_seconds)` until `stop` is set."""
    interval = check_interval(threshold_seconds)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            break
        try:
            await report_blocked(store, catalog, publisher, clock(), threshold_seconds)
        except StoreError:
            log.warning(
                "blocked subjects not checked", exc_info=True, extra={"action": "worker.blocked"}
            )


__all__ = ["BlockedStore", "check_interval", "report_blocked", "run_blocked_watch"]
