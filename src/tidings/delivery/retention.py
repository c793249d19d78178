"""Retention (contract §7): delivery history older than TIDINGS_RETENTION_DAYS is purged by the
worker, in batches so no transaction holds the database for long, resting between them as long
as each took. The audit trail has its own retention, TIDINGS_AUDIT_RETENTION_DAYS (default 365,
issue 22), purged by the same task.

On PostgreSQL deliveries and attempts are partitioned by day (issue 27, migration 0022): each
pass first makes the partitions of today and the days ahead (so no cron is needed and an insert
never waits for one), then drops each day wholly older than the cutoff as one table instead of
deleting its rows; the row-by-row purge that follows is left what lives outside the days (rows
kept open past their day, rows from before the upgrade) and the events. On PostgreSQL a day's
history is so kept until all of it is past the retention: up to a day longer than on SQLite.
The pass runs even with retention off, for the partitions ahead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from tidings.clock import Clock
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.retention")

PURGE_BATCH_SIZE = 2_000
PARTITION_DAYS_AHEAD = 4  # today's day partition and the three after it
PURGE_INTERVAL_SECONDS = 300.0
# between batches the purge rests as long as the batch took, and at least this: it never has
# more than half of the database's time (a fixed 50 ms after 500 rows made a day's events on
# PostgreSQL take 6 s, mostly resting)
PAUSE_BETWEEN_BATCHES_SECONDS = 0.005
MAX_BATCHES_PER_RUN = 10_000


class HistoryStore(Protocol):
    """The part of the store that purges history."""

    async def purge_history(self, cutoff: float, batch_size: int) -> int: ...

    async def purge_audit(self, cutoff: float, batch_size: int) -> int: ...

    async def make_history_partitions(self, now: float, days: int) -> int: ...

    async def drop_history_partitions(self, cutoff: float) -> list[str]: ...


async def purge_once(
    store: HistoryStore,
    clock: Clock,
    retention_days: float,
    *,
    audit_retention_days: float = 0.0,
    batch_size: int = PURGE_BATCH_SIZE,
    pause_seconds: float = PAUSE_BETWEEN_BATCHES_SECONDS,
) -> int:
    """Purge delivery history older than `retention_days` and audit entries older than
    `audit_retention_days` (batch after batch until none is left). Answers the rows deleted.
    A retention `<= 0` keeps everything of its kind."""
    total = 0
    now = clock()
    if retention_days > 0:  # whole days first: what is left for the rows below is small
        dropped = await store.drop_history_partitions(now - retention_days * 86400.0)
        if dropped:
            log.info(
                "history partitions dropped",
                extra={"action": "retention.partitions_dropped", "partitions": dropped},
            )
    for days, purge, what in (
        (retention_days, store.purge_history, "history"),
        (audit_retention_days, store.purge_audit, "audit"),
    ):
        if days <= 0:
            continue
        cutoff = now - days * 86400.0
        rows = 0
        for _ in range(MAX_BATCHES_PER_RUN):
            started = time.monotonic()
            deleted = await purge(cutoff=cutoff, batch_size=batch_size)
            rows += deleted
            if deleted == 0:
                break
            await asyncio.sleep(max(pause_seconds, time.monotonic() - started))
        if rows:
            log.info(
                f"{what} purged",
                extra={"action": f"retention.{what}_purged", "rows": rows, "cutoff": cutoff},
            )
        total += rows
    return total


async def make_partitions(store: HistoryStore, clock: Clock) -> int:
    """Make the history's day partitions from today on (PostgreSQL); answers how many."""
    made = await store.make_history_partitions(clock(), PARTITION_DAYS_AHEAD)
    if made:
        log.info(
            "history partitions made",
            extra={"action": "retention.partitions_made", "partitions": made},
        )
    return made


async def run_retention(
    store: HistoryStore,
    clock: Clock,
    retention_days: float,
    stop: asyncio.Event,
    *,
    audit_retention_days: float = 0.0,
    interval_seconds: float = PURGE_INTERVAL_SECONDS,
    batch_size: int = PURGE_BATCH_SIZE,
) -> None:
    """Make the partitions ahead and purge, now and then every `interval_seconds`, until `stop`
    is set. Store errors are logged and tried again at the next interval."""
    while not stop.is_set():
        try:
            await make_partitions(store, clock)
            await purge_once(
                store,
                clock,
                retention_days,
                audit_retention_days=audit_retention_days,
                batch_size=batch_size,
            )
        except StoreError:
            log.warning("purge failed", exc_info=True, extra={"action": "retention.failed"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


__all__ = [
    "PARTITION_DAYS_AHEAD",
    "PURGE_BATCH_SIZE",
    "PURGE_INTERVAL_SECONDS",
    "HistoryStore",
    "make_partitions",
    "purge_once",
    "run_retention",
]
