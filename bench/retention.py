"""Issue 27 §3's `retention` scenario (PostgreSQL): history at scale, and the retention pass that
removes its oldest day while a full-speed drain runs.

Set-up: a new database whose store makes the day partitions from 31 days back to the days ahead
(`make_history_partitions`, as the worker's pass does), then 30 days of finished history ending
yesterday, written straight in SQL (`generate_series`, one statement per table and day): at
scale 1, 33,334 events a day to 10 endpoints (333,340 deliveries a day, all succeeded) with two
attempts each (a 500, then a 200 thirty seconds later): 20,000,400 attempts, 10,000,200
deliveries, 1,000,020 events. The endpoints' sequence counters continue after them. Then VACUUM
ANALYZE and CHECKPOINT.

Phases, A B A B (this VM's speed drifts between runs a minute apart): each publishes 10,000 new
events to the 10 endpoints (100,000 deliveries at scale 1) through the real Publisher, settles,
and times one `worker` draining them against the receiver (from its 2,000th attempt, for 10 s or
until 90 % are attempted, as `backlog` times its windows; then the rest is drained untimed). In
a B phase, as that window starts, the bench runs the retention pass as a worker's would
(`purge_once`, retention 30 days) with a clock one day further on per B phase, so each B pass
has exactly the oldest day to remove. The worker under test keeps its own retention task
(default 30 days), which finds nothing to remove with the real clock.

Figures: the drain rate of the B phases over the A phases (goal ≥ 0.9, medians); the purge,
i.e. the dropping of the oldest day's deliveries and attempts partitions (`drop_history_partitions`)
that the pass does first, at its slowest (goal < 1 s); beside it, the rest of the pass: the
oldest day's events, which stay one table (no partitions: their ids and idempotency keys must
stay unique across days) and are deleted row by row in batches of 500, timed and reported.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.env import (
    AttemptCounter,
    bulk_publish,
    connected,
    envelope,
    fresh_database,
    make_tenant,
    settle,
    tidings_env,
    tidings_process,
)
from bench.receiver import start_receiver
from bench.scenarios import Figure, _n
from tidings.delivery.retention import purge_once
from tidings.store.base import Store

DAY = 86_400.0
DAYS = 30
ENDPOINTS = 10
EVENTS_PER_DAY = 33_334  # x 10 endpoints x 2 attempts x 30 days: 20,000,400 attempts
DRAIN_EVENTS = 10_000  # per phase, x 10 endpoints
PHASES = "ABAB"
SKIP = 2_000  # attempts before a window starts (start-up over)
WINDOW = 10.0
RETENTION_DAYS = 30.0


async def _write_history(url: str, org: str, endpoints: list[str], per_day: int) -> float:
    """30 days of finished history ending yesterday, in SQL; answers the seconds it took."""
    import asyncpg

    started = time.monotonic()
    today = (time.time() // DAY) * DAY
    spacing = DAY / per_day
    conn = await asyncpg.connect(url)
    try:
        for k in range(DAYS, 0, -1):  # oldest first: ids and sequences in time order
            lo = today - k * DAY
            first = (DAYS - k) * per_day  # the day's first event number, 0-based
            day = (org, lo, first, spacing, per_day)  # $1-$5 of each statement
            await conn.execute(
                """INSERT INTO events (id, organization_id, type, schema_version, source, data,
                                       created_at)
                   SELECT 'evt_h' || ($3 + n), $1, 'compliance.status_changed', 2, 'SYSTEM',
                          jsonb_build_object('orderId', 'ord_h' || ($3 + n)), $2 + n * $4
                   FROM generate_series(0, $5 - 1) AS n""",
                *day,
            )
            await conn.execute(
                """INSERT INTO deliveries (id, organization_id, event_id, endpoint_id, status,
                                           schema_version, attempt_count, last_attempt_at,
                                           last_status_code, created_at, updated_at, sequence)
                   SELECT 'dlv_h' || ($3 * 10 + n), $1, 'evt_h' || ($3 + n / 10),
                          ($6::text[])[1 + n % 10], 'succeeded', 2, 2,
                          $2 + (n / 10) * $4 + 30, 200, $2 + (n / 10) * $4,
                          $2 + (n / 10) * $4 + 30, $3 + n / 10 + 1
                   FROM generate_series(0, $5 * 10 - 1) AS n""",
                *day,
                endpoints,
            )
            await conn.execute(
                """INSERT INTO attempts (delivery_id, organization_id, number, series,
                                         started_at, duration_ms, status_code)
                   SELECT 'dlv_h' || ($3 * 10 + n / 2), $1, 1 + n % 2, 1,
                          $2 + (n / 20) * $4 + (n % 2) * 30, 12.5,
                          CASE WHEN n % 2 = 0 THEN 500 ELSE 200 END
                   FROM generate_series(0, $5 * 20 - 1) AS n""",
                *day,
            )
        await conn.execute(
            """INSERT INTO endpoint_sequences (endpoint_id, last)
               SELECT e, $2 FROM unnest($1::text[]) AS e
               ON CONFLICT (endpoint_id) DO UPDATE SET last = excluded.last""",
            endpoints,
            DAYS * per_day,
        )
    finally:
        await conn.close()
    return time.monotonic() - started


async def _sizes(url: str) -> tuple[int, int, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return tuple(  # type: ignore[return-value]
            [
                int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                for table in ("attempts", "deliveries", "events")
            ]
        )
    finally:
        await conn.close()


async def _purge(store: Store, clock_ahead: float) -> tuple[float, float, list[str]]:
    """The retention pass with a clock `clock_ahead` seconds on: (seconds dropping partitions,
    seconds of the rest of the pass, the partitions dropped)."""
    now = time.time() + clock_ahead
    started = time.monotonic()
    dropped = await store.drop_history_partitions(now - RETENTION_DAYS * DAY)
    dropping = time.monotonic() - started
    started = time.monotonic()
    await purge_once(store, lambda: now, RETENTION_DAYS)
    return dropping, time.monotonic() - started, dropped


async def _phase(
    url: str, store: Store, org: str, first: int, events: int, purge_ahead: float | None
) -> tuple[float, tuple[float, float, list[str]] | None]:
    """Publish `events` new events and time their drain (see the module docstring); with
    `purge_ahead`, run the retention pass 1 s into the window. Answers (rate, purge)."""
    await bulk_publish(store, org, events, make=lambda o, n: envelope(o, first + n))
    await settle(url)
    total = events * ENDPOINTS
    purge: tuple[float, float, list[str]] | None = None
    async with AttemptCounter(url) as attempts:
        base = await attempts.count()
        env = tidings_env(url, TIDINGS_RETENTION_DAYS=str(int(RETENTION_DAYS)))
        with tidings_process(["worker"], env):
            while await attempts.count() < base + min(SKIP, total // 5):
                await asyncio.sleep(0.02)
            start_count = await attempts.count()
            started = time.monotonic()
            task: asyncio.Task[Any] | None = None
            if purge_ahead is not None:
                task = asyncio.create_task(_purge(store, purge_ahead))
            done = start_count
            while time.monotonic() - started < WINDOW and done < base + int(total * 0.9):
                await asyncio.sleep(0.02)
                done = await attempts.count()
            elapsed = time.monotonic() - started
            rate = (done - start_count) / elapsed
            if task is not None:
                purge = await task
            while await attempts.count() < base + total:  # the rest, untimed
                await asyncio.sleep(0.1)
    return rate, purge


async def retention(scale: float, receiver: str) -> list[Figure]:
    per_day = _n(EVENTS_PER_DAY, scale, 10)
    drain_events = _n(DRAIN_EVENTS, scale, 100)
    rx = start_receiver(receiver)
    try:
        async with fresh_database("postgres") as url, connected(url) as store:
            urls = [f"{rx.url}/r{i}" for i in range(ENDPOINTS)]
            tenant = await make_tenant(store, urls)
            await store.make_history_partitions(time.time() - (DAYS + 1) * DAY, DAYS + 5)
            seconds = await _write_history(url, tenant.org_id, tenant.endpoint_ids, per_day)
            await settle(url)
            attempts, deliveries, events = await _sizes(url)
            print(
                f"  history: {attempts:,} attempts, {deliveries:,} deliveries, "
                f"{events:,} events over {DAYS} days, written in {seconds:.0f} s"
            )
            rates: dict[str, list[float]] = {"A": [], "B": []}
            purges: list[tuple[float, float, list[str]]] = []
            for i, kind in enumerate(PHASES):
                ahead = (len(purges) + 1) * DAY if kind == "B" else None
                rate, purge = await _phase(
                    url, store, tenant.org_id, i * drain_events, drain_events, ahead
                )
                rates[kind].append(rate)
                extra = ""
                if purge is not None:
                    purges.append(purge)
                    extra = (
                        f", dropped {', '.join(purge[2])} in {purge[0] * 1000:,.0f} ms, "
                        f"the rest of the pass {purge[1]:.2f} s"
                    )
                print(f"  phase {kind}: {rate:,.0f} deliveries/s{extra}")
            left = await _sizes(url)
    finally:
        rx.stop()
    alone, purging = statistics.median(rates["A"]), statistics.median(rates["B"])
    ratio = purging / alone if alone else 0.0
    slowest = max(p[0] for p in purges)
    rest = max(p[1] for p in purges)
    whole_days = all(len(p[2]) == 2 for p in purges)
    size = (
        f"{attempts:,} attempts, {deliveries:,} deliveries, {events:,} events over {DAYS} days "
        f"(written in SQL); phases {PHASES}, {drain_events * ENDPOINTS:,} deliveries each, one "
        f"`worker` ({rx.kind}): alone {', '.join(f'{r:,.0f}' for r in rates['A'])}/s, while "
        f"purging {', '.join(f'{r:,.0f}' for r in rates['B'])}/s; each B pass dropped "
        f"{' + '.join(purges[0][2]) if purges else '-'} and the like; left after "
        f"{len(purges)} passes: {left[0]:,} attempts, {left[1]:,} deliveries, {left[2]:,} events"
    )
    return [
        Figure(
            "retention",
            "drain while purging vs alone",
            ratio,
            "ratio",
            "≥ 0.9",
            ratio >= 0.9,
            alone,
            ratio,
            size,
        ),
        Figure(
            "retention",
            "purge of the oldest day (slowest)",
            slowest,
            "s",
            "< 1 s",
            slowest < 1.0 and whole_days,
            size=size,
        ),
        Figure(
            "retention",
            "rest of the pass: the day's events, row by row",
            rest,
            "s",
            "- (reported)",
            None,
            size=size,
        ),
    ]
