"""PostgreSQL's attempts partitioned by day (issue 27 §3, migration 0022): the worker's retention
pass makes the days ahead and drops a day wholly past the cutoff as one table, keeping the
attempts of deliveries still open; the upgrade keeps every row; the history's reads stay on
their indexes across partitions."""

from __future__ import annotations

import math
from collections.abc import Callable

import asyncpg
import pytest

from tidings.delivery.retention import PARTITION_DAYS_AHEAD, make_partitions, purge_once
from tidings.models import DeliveryStatus
from tidings.store.base import Store
from tidings.store.connect import open_store
from tidings.store.sql import load_queries

from .helpers import T0, make_endpoint, make_org, migrate_before, outcome, publish_one

pytestmark = pytest.mark.postgres

DAY = 86_400.0
LEASE = 60.0
QUERIES = load_queries("postgres")


def at(moment: float) -> Callable[[], float]:
    return lambda: moment


async def _attempted(
    store: Store, org: str, endpoint_id: str, when: float, status: DeliveryStatus
) -> str:
    """A delivery published at `when` and attempted once just after, left `status`."""
    _, [delivery_id] = await publish_one(store, org, [endpoint_id], now=when)
    claimed = await store.claim_due("w", when + 1, LEASE, 100)
    assert delivery_id in {c.delivery.id for c in claimed}
    succeeded = status is DeliveryStatus.SUCCEEDED
    await store.record_outcomes(
        "w",
        [
            outcome(
                delivery_id,
                endpoint_id,
                status,
                success=succeeded,
                at=when + 2,
                code=200 if succeeded else 500,
                next_attempt_at=None if succeeded else when + 90 * DAY,
            )
        ],
        now=when + 3,
    )
    return delivery_id


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _homes(url: str) -> dict[str, tuple[str, str]]:
    """Each delivery id with the partitions its row and its attempt's row live in."""
    rows = await _fetch(
        url,
        "SELECT d.id, d.tableoid::regclass::text AS delivery, a.tableoid::regclass::text"
        " AS attempt FROM deliveries AS d JOIN attempts AS a ON a.delivery_id = d.id",
    )
    return {r["id"]: (r["delivery"], r["attempt"]) for r in rows}


async def _partitions(url: str) -> dict[str, tuple[float, float]]:
    rows = await _fetch(
        url,
        "SELECT * FROM tidings_partitions('deliveries')"
        " UNION ALL SELECT * FROM tidings_partitions('attempts')",
    )
    return {r["name"]: (r["lo"], r["hi"]) for r in rows}


def _day(day: str) -> tuple[str, str]:
    return f"deliveries_p{day}", f"attempts_p{day}"


DEFAULT = ("deliveries_default", "attempts_default")


async def test_history_lives_in_day_partitions_and_a_past_day_goes_whole(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    url = fresh_database_url_factory("postgres")
    store = open_store(url)
    await store.connect()
    try:
        # the worker's pass makes today's partitions and the days ahead; a second pass, none
        assert await make_partitions(store, at(T0 + 10)) == 2 * PARTITION_DAYS_AHEAD
        assert await make_partitions(store, at(T0 + 20)) == 0
        days = await _partitions(url)
        for table in ("deliveries", "attempts"):
            assert days[f"{table}_p20260101"] == (T0, T0 + DAY)
            assert days[f"{table}_p20260104"] == (T0 + 3 * DAY, T0 + 4 * DAY)

        org = await make_org(store)
        ep = await make_endpoint(store, org)
        done = await _attempted(store, org, ep.id, T0 + 100, DeliveryStatus.SUCCEEDED)
        still_open = await _attempted(store, org, ep.id, T0 + 200, DeliveryStatus.PENDING)
        later = await _attempted(store, org, ep.id, T0 + 2 * DAY, DeliveryStatus.SUCCEEDED)
        # no partition for that day yet: the default ones take it, and that day is then left
        stray = await _attempted(store, org, ep.id, T0 + 100 * DAY, DeliveryStatus.SUCCEEDED)
        assert await store.make_history_partitions(T0 + 100 * DAY, 1) == 0
        assert await _homes(url) == {
            done: _day("20260101"),
            still_open: _day("20260101"),
            later: _day("20260103"),
            stray: DEFAULT,
        }

        # 30 days after the end of day one: the day's tables are dropped with the finished
        # delivery; the open one goes on in the default partitions with its attempt
        await purge_once(store, at(T0 + 31 * DAY + 1), 30, pause_seconds=0)
        days = await _partitions(url)
        assert not set(_day("20260101")) & set(days)
        assert {*_day("20260102"), *_day("20260103")} <= set(days)
        assert await store.get_delivery(org, done) is None
        kept = await store.get_delivery(org, still_open)
        assert kept is not None and kept.status is DeliveryStatus.PENDING
        attempts = await store.list_attempts(org, still_open)
        assert [(a.number, a.started_at, a.status_code) for a in attempts] == [(1, T0 + 202, 500)]
        assert await _homes(url) == {still_open: DEFAULT, later: _day("20260103"), stray: DEFAULT}

        # the row-by-row purge leaves a day partly past the cutoff to its partitions
        await purge_once(store, at(T0 + 32 * DAY + 10), 30, pause_seconds=0)
        assert await store.get_delivery(org, later) is not None
        await purge_once(store, at(T0 + 33 * DAY), 30, pause_seconds=0)
        assert await store.get_delivery(org, later) is None
        assert not set(_day("20260103")) & set(await _partitions(url))
    finally:
        await store.close()


async def test_the_upgrade_keeps_every_row(
    fresh_database_url_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database_url_factory("postgres", migrated=False)
    store = open_store(url)
    await store.connect()
    try:
        await migrate_before(store, 22, monkeypatch)
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        done = await _attempted(store, org, ep.id, T0, DeliveryStatus.SUCCEEDED)
        still_open = await _attempted(store, org, ep.id, T0 + DAY, DeliveryStatus.PENDING)
        before = {d: await store.list_attempts(org, d) for d in (done, still_open)}
        deliveries = {d: await store.get_delivery(org, d) for d in (done, still_open)}

        assert (await store.migrate())[0] == 22
        legacy = ("deliveries_legacy", "attempts_legacy")
        assert await _homes(url) == {done: legacy, still_open: legacy}
        assert {d: await store.list_attempts(org, d) for d in (done, still_open)} == before
        assert {d: await store.get_delivery(org, d) for d in (done, still_open)} == deliveries
        days = await _partitions(url)
        legacy_end = days["attempts_legacy"][1]
        assert days["deliveries_legacy"] == days["attempts_legacy"] == (-math.inf, legacy_end)
        assert legacy_end > T0 + DAY and legacy_end % DAY == 0  # the end of the upgrade's day

        # once all of it is past retention the legacy tables go like a day; the open
        # delivery and its attempt stay, and new rows still number on (the sequences survived)
        await purge_once(store, at(legacy_end + 30 * DAY), 30, pause_seconds=0)
        assert not set(legacy) & set(await _partitions(url))
        assert await store.list_attempts(org, still_open) == before[still_open]
        assert await store.get_delivery(org, still_open) == deliveries[still_open]
        assert await _homes(url) == {still_open: DEFAULT}
        after = await _attempted(store, org, ep.id, legacy_end + DAY, DeliveryStatus.SUCCEEDED)
        [attempt] = await store.list_attempts(org, after)
        assert attempt.number == 1
    finally:
        await store.close()


def _sql(name: str, **values: str) -> str:
    """A named query with its parameters written in (EXPLAIN takes no parameters)."""
    query = QUERIES[name]
    sql = query.sql
    args = [values.get(p, "NULL") for p in query.params]
    for n in range(len(args), 0, -1):
        sql = sql.replace(f"${n}", args[n - 1])
    return sql


DAYS = ("20260101", "20260102", "20260103", "20260104", "20260105")


async def _plans(conn: asyncpg.Connection, name: str, **values: str | int) -> list[str]:
    """EXPLAIN of a named query, with its values written in (the custom plan) and as the generic
    plan a prepared statement switches to after five runs."""
    sql = _sql(name, **{k: f"'{v}'" if isinstance(v, str) else str(v) for k, v in values.items()})
    custom = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
    query = QUERIES[name]
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        statement = await conn.prepare("EXPLAIN " + query.sql)
        args = [values.get(p) for p in query.params]
        generic = "\n".join(r[0] for r in await statement.fetch(*args))
    finally:
        await conn.execute("RESET plan_cache_mode")
    return [custom, generic]


async def _empty_partitions(conn: asyncpg.Connection, parent: str) -> set[str]:
    parts = await conn.fetch(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = $1::regclass",
        parent,
    )
    return {
        row["relname"]
        for row in parts
        if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {row['relname']})")
    }


def _read_whole(plan: str) -> set[str]:
    return {line.split(" on ")[1].split()[0] for line in plan.splitlines() if "Seq Scan on" in line}


async def test_the_history_is_read_off_each_days_indexes(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    """The reads the console and the API make stay on each day partition's indexes: a
    delivery's attempts, an organization's deliveries newest first, an endpoint's, an event's:
    every partition that holds rows is read through an index of its own, none whole, in the
    custom plan as in the generic one (an empty day ahead costs a scan of no page). The
    newest-first pages of deliveries merge the partitions' index order: nothing sorts."""
    url = fresh_database_url_factory("postgres")
    store = open_store(url)
    await store.connect()
    try:
        await store.make_history_partitions(T0, 5)
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        delivery = await _attempted(store, org, ep.id, T0 + 4 * DAY, DeliveryStatus.SUCCEEDED)
    finally:
        await store.close()
    conn = await asyncpg.connect(url)
    try:  # 20,000 deliveries and 40,000 attempts a day for five days, written in SQL
        await conn.execute(
            """INSERT INTO deliveries (id, organization_id, event_id, endpoint_id, status,
                                       attempt_count, created_at, updated_at, sequence)
               SELECT 'dlv_' || n, $1, 'evt_' || (n / 10), 'ep_' || (n % 10), 'succeeded', 2,
                      $2 + n * 4.32, $2 + n * 4.32, n / 10 + 1
               FROM generate_series(0, 99999) AS n""",
            org,
            T0,
        )
        await conn.execute(
            """INSERT INTO attempts (delivery_id, organization_id, number, series, started_at,
                                     duration_ms, status_code)
               SELECT 'dlv_' || (n / 2), $1, 1 + n % 2, 1, $2 + n * 2.16, 10, 200
               FROM generate_series(0, 199999) AS n""",
            org,
            T0,
        )
        await conn.execute("ANALYZE deliveries")
        await conn.execute("ANALYZE attempts")
        reads = [
            ("attempts", "list_attempts", {"delivery_id": delivery}),
            ("deliveries", "list_deliveries", {}),
            ("deliveries", "list_deliveries_for_endpoint", {"endpoint_id": "ep_3"}),
            ("deliveries", "list_deliveries_for_event", {"event_id": "evt_5"}),
        ]
        for parent, name, values in reads:
            empty = await _empty_partitions(conn, parent)
            assert len(empty) == 4  # the three days the migration made ahead, the default
            for plan in await _plans(conn, name, organization_id=org, limit=50, **values):
                days = DAYS[:1] if name == "list_deliveries_for_event" else DAYS  # evt_5: day 1
                for day in days:  # an index of that day's partition (named after it) is read
                    assert f"{parent}_p{day}_" in plan, (name, plan)
                assert _read_whole(plan) <= empty, (name, plan)  # only tables with no row
                if name in ("list_deliveries", "list_deliveries_for_endpoint"):  # 100k, 10k
                    sorts = [ln for ln in plan.splitlines() if "Sort  (" in ln]
                    assert not sorts, (name, plan)
    finally:
        await conn.close()
