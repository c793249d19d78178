"""The tables' statistics kept fresh (PostgreSQL): every tidings process (API or worker) runs
this pass at start and every ANALYZE_INTERVAL_SECONDS; it analyzes each table that has changed
by ANALYZE_MIN_ROWS plus ANALYZE_FRACTION of its rows since its last analyze, one process at a
time (the store's `refresh_statistics`; migration 0023 says why autovacuum alone comes too late
for the publish's cached plans). A store error is logged and tried again at the next interval:
the pass never stops publishing or delivery. On SQLite it analyzes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from tidings.store.base import StoreError

log = logging.getLogger("tidings.table_statistics")

# A pass that finds nothing to do is one read of pg_stat_user_tables (about a millisecond); at
# 10 s the publish bench's first 10 s ran on the blind plans (35 slow projection checks a
# second), at 2 s they are gone after the first pass that sees 500 rows changed.
ANALYZE_INTERVAL_SECONDS = 2.0
ANALYZE_MIN_ROWS = 500
ANALYZE_FRACTION = 0.1  # autovacuum's own (autovacuum_analyze_scale_factor)


class StatisticsStore(Protocol):
    """The part of the store that refreshes the tables' statistics."""

    async def refresh_statistics(self, rows: int, fraction: float) -> list[str]: ...


async def refresh_once(store: StatisticsStore) -> list[str]:
    """One pass: the tables analyzed."""
    analyzed = await store.refresh_statistics(ANALYZE_MIN_ROWS, ANALYZE_FRACTION)
    if analyzed:
        log.debug("tables analyzed", extra={"action": "analyze.tables", "tables": analyzed})
    return analyzed


async def run_analyze(
    store: StatisticsStore,
    stop: asyncio.Event,
    *,
    interval_seconds: float = ANALYZE_INTERVAL_SECONDS,
) -> None:
    """Refresh the statistics now and every `interval_seconds` until `stop` is set."""
    while not stop.is_set():
        try:
            await refresh_once(store)
        except StoreError:
            log.warning(
                "statistics refresh failed", exc_info=True, extra={"action": "analyze.failed"}
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


__all__ = [
    "ANALYZE_FRACTION",
    "ANALYZE_INTERVAL_SECONDS",
    "ANALYZE_MIN_ROWS",
    "StatisticsStore",
    "refresh_once",
    "run_analyze",
]
