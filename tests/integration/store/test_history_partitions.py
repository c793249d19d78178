"""PostgreSQL's attempts partitioned by day (issue 27 §3, migration 0022): the worker's retention
pass makes the days ahead and drops a day wholly past the cutoff as one table, keeping the
attempts of deliveries still open; the upgrade keeps every row; the history's reads stay on
their indexes across partitions."""

from __future__ import annotations

from collections.abc import Callable
import asyncpg
import pytest

from tidings.delivery.retention import PARTITION_DAYS_AHEAD, make_partitions, purge_once
from tidings.models import DeliveryStatus
from tidings.store import base as store_base
from tidings.store.base import Store
from tidings.store.connect import open_store
from tidings.store.sql import load_migrations, load_queries

from .helpers import T0, make_endpoint, make_org, outcome, publish_one

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


async def _homes(url: str) -> dict[str, str]:
    """Each attempt's delivery id and the partition its row lives in."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT delivery_id, tableoid::regclass::text AS home FROM attempts"
        )
        return {r["delivery_id"]: r["home"] for r in rows}
    finally:
        await conn.close()


async def _partitions(url: str) -> dict[str, tuple[float, float]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM tidings_partitions('attempts')")
        return {r["name"]: (r["lo"], r["hi"]) for r in rows}
    finally:
        await conn.close()


async def test_attempts_live_in_day_partitions_and_a_past_day_goes_whole(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    url = fresh_database_url_factory("postgres")
    store = open_store(url)
    await store.connect()
    try:
        # the worker's pass makes today's partition and the days ahead; a second pass, none
        assert await make_partitions(store, at(T0 + 10)) == PARTITION_DAYS_AHEAD
        assert await make_partitions(store, at(T0 + 20)) == 0
        days = await _partitions(url)
        assert days["attempts_p20260101"] == (T0, T0 + DAY)
        assert days["attempts_p20260104"] == (T0 + 3 * DAY, T0 + 4 * DAY)

        org = await make_org(store)
        ep = await make_endpoint(store, org)
        done = await _attempted(store, org, ep.id, T0 + 100, DeliveryStatus.SUCCEEDED)
        still_open = await _attempted(store, org, ep.id, T0 + 200, DeliveryStatus.PENDING)
        later = await _attempted(store, org, ep.id, T0 + 2 * DAY, DeliveryStatus.SUCCEEDED)
        # no partition for that day yet: the default one takes it, and that day is then left
        stray = await _attempted(store, org, ep.id, T0 + 100 * DAY, DeliveryStatus.SUCCEEDED)
        assert await store.make_history_partitions(T0 + 100 * DAY, 1) == 0
        assert await _homes(url) == {
            done: "attempts_p20260101",
            still_open: "attempts_p20260101",
            later: "attempts_p20260103",
            stray: "attempts_default",
        }

        # 30 days after the end of day one: its finished delivery is purged and the day's
        # table dropped; the open delivery keeps its attempt (now in the default partition)
        await purge_once(store, at(T0 + 31 * DAY + 1), 30, pause_seconds=0)
        days = await _partitions(url)
        assert "attempts_p20260101" not in days
        assert {"attempts_p20260102", "attempts_p20260103"} <= set(days)
        assert await store.get_delivery(org, done) is None
        kept = await store.list_attempts(org, still_open)
        assert [(a.number, a.started_at, a.status_code) for a in kept] == [(1, T0 + 202, 500)]
        assert await _homes(url) == {
            still_open: "attempts_default",
            later: "attempts_p20260103",
            stray: "attempts_default",
        }
        assert [a.started_at for a in await store.list_attempts(org, later)] == [T0 + 2 * DAY + 2]
    finally:
        await store.close()


async def test_the_upgrade_keeps_every_attempt(
    fresh_database_url_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database_url_factory("postgres", migrated=False)
    store = open_store(url)
    await store.connect()
    try:
        with monkeypatch.context() as m:
            m.setattr(
                store_base,
                "load_migrations",
                lambda dialect: [x for x in load_migrations(dialect) if x.version < 22],
            )
            assert 22 not in await store.migrate()
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        done = await _attempted(store, org, ep.id, T0, DeliveryStatus.SUCCEEDED)
        still_open = await _attempted(store, org, ep.id, T0 + DAY, DeliveryStatus.PENDING)
        before = {d: await store.list_attempts(org, d) for d in (done, still_open)}

        assert await store.migrate() == [22]
        assert await _homes(url) == {done: "attempts_legacy", still_open: "attempts_legacy"}
        assert {d: await store.list_attempts(org, d) for d in (done, still_open)} == before
        legacy_end = (await _partitions(url))["attempts_legacy"][1]
        assert legacy_end > T0 + DAY and legacy_end % DAY == 0  # the end of the upgrade's day

        # once all of it is past retention the legacy table goes like a day; the open
        # delivery's attempt stays, and new attempts still number on (the sequence survived)
        await purge_once(store, at(legacy_end + 30 * DAY), 30, pause_seconds=0)
        assert "attempts_legacy" not in await _partitions(url)
        assert await store.list_attempts(org, still_open) == before[still_open]
        assert await _homes(url) == {still_open: "attempts_default"}
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


async def test_a_deliverys_attempts_are_read_off_each_days_index(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    """The attempts page of a delivery (console and API) stays on the (delivery_id, seq) index
    of every day partition that holds rows: none is read whole, in the custom plan as in the
    generic one a prepared statement switches to (an empty day ahead costs a scan of no page;
    the one delivery's few attempts are then sorted by seq)."""
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
    try:  # 20,000 attempts a day for five days, written in SQL
        await conn.execute(
            """INSERT INTO attempts (delivery_id, organization_id, number, series, started_at,
                                     duration_ms, status_code)
               SELECT 'dlv_' || (n / 2), $1, 1 + n % 2, 1, $2 + n * 4.32, 10, 200
               FROM generate_series(0, 99999) AS n""",
            org,
            T0,
        )
        await conn.execute("ANALYZE attempts")
        sql = _sql("list_attempts", organization_id=f"'{org}'", delivery_id=f"'{delivery}'")
        custom = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        statement = await conn.prepare("EXPLAIN " + QUERIES["list_attempts"].sql)
        generic = "\n".join(r[0] for r in await statement.fetch(delivery, org))
        parts = await conn.fetch(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'attempts'::regclass"
        )
        empty = {
            row["relname"]
            for row in parts
            if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {row['relname']})")
        }
        assert len(empty) == 4  # the three days the migration made ahead, and the default
        for plan in (custom, generic):
            for day in ("20260101", "20260102", "20260103", "20260104", "20260105"):
                assert f"Index Scan using attempts_p{day}_delivery_id_seq_idx" in plan, plan
            scanned = {
                line.split(" on ")[1].split()[0]
                for line in plan.splitlines()
                if "Seq Scan on" in line
            }
            assert scanned <= empty, plan  # only tables with no row
    finally:
        await conn.close()
