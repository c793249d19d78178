"""PostgreSQL-only behaviour: concurrent claimers, cross-process wake-ups, concurrent migrate."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import orjson
import pytest

from tidings.models import DeliveryStatus, Projection
from tidings.store import base as store_base
from tidings.store import postgres as postgres_module
from tidings.store import rows
from tidings.store.base import (
    DeliveryFilter,
    ProjectionUpdate,
    PublishItem,
    Store,
    StoreError,
    SubscribersChanged,
)
from tidings.store.postgres import PostgresConnector
from tidings.store.sql import load_migrations, load_queries
from tidings.table_statistics import ANALYZE_FRACTION, ANALYZE_MIN_ROWS

from .helpers import T0, event, item, make_endpoint, make_org, outcome, pending

pytestmark = pytest.mark.postgres

WAIT_SECONDS = 10.0
QUERIES = load_queries("postgres")


def statement(name: str, **params: Any) -> list[Any]:
    """A named query as asyncpg takes it: its SQL, then its parameters in their order."""
    query = QUERIES[name]
    return [query.sql, *(params[p] for p in query.params)]


def pg_store(url: str, **pool: int) -> tuple[Store, PostgresConnector]:
    connector = PostgresConnector(url, **pool)
    return Store(connector), connector


@pytest.fixture
def pg_url(fresh_database_url_factory: Callable[..., str]) -> str:
    return fresh_database_url_factory("postgres")


@pytest.fixture
async def two_stores(pg_url: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = pg_store(pg_url, max_connections=4)[0], pg_store(pg_url, max_connections=4)[0]
    await a.connect()
    await b.connect()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_concurrent_claimers_never_share_a_delivery(
    two_stores: tuple[Store, Store],
) -> None:
    a, b = two_stores
    org = await make_org(a)
    endpoints = [await make_endpoint(a, org) for _ in range(4)]
    items = [item(event(org), [pending(ep.id) for ep in endpoints]) for _ in range(75)]
    await a.publish(items, now=T0)
    total = 75 * len(endpoints)

    async def drain(store: Store, worker: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim_due(worker, T0 + 1, 60.0, 7):
            got += [c.delivery.id for c in batch]
        return got

    results = await asyncio.gather(
        drain(a, "wa1"), drain(a, "wa2"), drain(b, "wb1"), drain(b, "wb2")
    )
    claimed = [d for r in results for d in r]
    assert len(claimed) == total
    assert len(set(claimed)) == total
    assert sum(1 for r in results if r) >= 2  # the claimers really ran side by side


async def test_concurrent_failures_add_up(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    org = await make_org(a)
    ep = await make_endpoint(a, org)
    deliveries = [pending(ep.id) for _ in range(20)]
    await a.publish([item(event(org), [d]) for d in deliveries], now=T0)
    claims_a = await a.claim_due("wa", T0, 60.0, 10)
    claims_b = await b.claim_due("wb", T0, 60.0, 10)

    async def fail_all(store: Store, worker: str, ids: list[str]) -> None:
        for delivery_id in ids:
            await store.record_outcomes(
                worker,
                [
                    outcome(
                        delivery_id,
                        ep.id,
                        DeliveryStatus.PENDING,
                        success=False,
                        at=T0,
                        next_attempt_at=T0 + 60,
                    )
                ],
                T0 + 1,
            )

    await asyncio.gather(
        fail_all(a, "wa", [c.delivery.id for c in claims_a]),
        fail_all(b, "wb", [c.delivery.id for c in claims_b]),
    )
    got = await a.get_endpoint(org, ep.id)
    assert got is not None and got.failure_streak == 20 and got.failing_since == T0 + 1


async def test_notify_wakes_a_listener_in_another_store(
    two_stores: tuple[Store, Store],
) -> None:
    listener, publisher = two_stores
    woken = asyncio.Event()
    listener.add_wakeup_listener(woken.set)
    await listener.listen()
    org = await make_org(publisher)
    ep = await make_endpoint(publisher, org)
    await publisher.publish([item(event(org), [])])  # nothing due: no notification needed
    await publisher.publish([item(event(org), [pending(ep.id)])])
    await asyncio.wait_for(woken.wait(), WAIT_SECONDS)


async def test_listener_reconnects_after_losing_its_connection(pg_url: str) -> None:
    listener, connector = pg_store(pg_url, max_connections=4)
    publisher = pg_store(pg_url, max_connections=4)[0]
    await listener.connect()
    await publisher.connect()
    try:
        await _reconnects(listener, connector, publisher)
    finally:
        await listener.close()
        await publisher.close()


async def _reconnects(listener: Store, connector: PostgresConnector, publisher: Store) -> None:
    woken = asyncio.Event()
    listener.add_wakeup_listener(woken.set)
    await listener.listen()
    backend_pid = connector.listener.get_server_pid()
    conn = await asyncpg.connect(connector.url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", backend_pid)
    finally:
        await conn.close()
    # the reconnect itself wakes once (notifications may have been missed meanwhile)
    await asyncio.wait_for(woken.wait(), WAIT_SECONDS)
    assert connector.listener.get_server_pid() != backend_pid
    woken.clear()
    org = await make_org(publisher)
    ep = await make_endpoint(publisher, org)
    await publisher.publish([item(event(org), [pending(ep.id)])])
    await asyncio.wait_for(woken.wait(), WAIT_SECONDS)


async def test_concurrent_migrate_applies_each_version_once(
    fresh_database_url_factory: Callable[..., str],
) -> None:
    url = fresh_database_url_factory("postgres", migrated=False)
    stores = [pg_store(url, max_connections=2)[0] for _ in range(3)]
    for s in stores:
        await s.connect()
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        every = [m.version for m in load_migrations("postgres")]
        assert len(every) >= 2
        assert sorted(results, key=len) == [[], [], every]
        assert (await stores[0].migration_status()).up_to_date
    finally:
        for s in stores:
            await s.close()


async def test_unreachable_server_is_a_store_error() -> None:
    store = pg_store("postgresql://postgres@127.0.0.1:1/none")[0]
    with pytest.raises(StoreError):
        await store.connect()


async def test_concurrent_publishers_apply_projection_updates_one_after_the_other(
    two_stores: tuple[Store, Store],
) -> None:
    a, b = two_stores
    org = await make_org(a)

    def bump(current: Projection | None) -> dict[str, object] | None:
        n = 0 if current is None else int(current.state["n"])
        return {"n": n + 1}

    async def publish_many(store: Store) -> None:
        for _ in range(15):
            update = (ProjectionUpdate("entitlement", "e-1", bump),)
            await store.publish([item(event(org), [], update)])

    await asyncio.gather(publish_many(a), publish_many(b), publish_many(a))
    p = await b.get_projection(org, "entitlement", "e-1")
    assert p is not None and p.state == {"n": 45} and p.version == 45


async def test_a_listener_that_stops_answering_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener, connector = pg_store(pg_url, max_connections=2)
    await listener.connect()
    monkeypatch.setattr(postgres_module, "LISTEN_CHECK_SECONDS", 0.05)
    answers = iter([False])

    async def alive() -> bool:
        return next(answers, True)  # silent the first time it is asked, then fine

    monkeypatch.setattr(connector, "listener_alive", alive)
    woken = asyncio.Event()
    listener.add_wakeup_listener(woken.set)
    try:
        await listener.listen()
        first = connector.listener
        await asyncio.wait_for(woken.wait(), WAIT_SECONDS)  # the reconnect wakes once
        assert connector.listener is not first and first.is_closed()
    finally:
        await listener.close()


async def test_new_events_take_one_statement_and_repeats_the_locking_path(
    two_stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = two_stores
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    locking: list[int] = []
    original = Store._publish_plain

    async def spy(self: Store, items: Any, now: float | None) -> Any:
        locking.append(len(items))
        return await original(self, items, now)

    monkeypatch.setattr(Store, "_publish_plain", spy)

    def bump(current: Projection | None) -> dict[str, object] | None:
        return {"n": 1 if current is None else int(current.state["n"]) + 1}

    update = (ProjectionUpdate("entitlement", "e-1", bump),)
    first = event(org)
    [r] = await store.publish([item(first, [pending(ep.id)], update)], now=T0)
    assert r.created and r.event.seq is not None and locking == []
    # a batch with one repeat: the one-statement publish refuses it whole, the locking path
    # stores the new event once and answers the repeat as stored
    second = event(org)
    results = await store.publish(
        [item(first, [pending(ep.id)], update), item(second, [pending(ep.id)], update)], now=T0
    )
    assert [x.created for x in results] == [False, True] and locking == [2]
    for ev in (first, second):
        page = await store.list_deliveries(
            org, DeliveryFilter(event_id=ev.id), limit=10, cursor=None
        )
        assert len(page.items) == 1
    p = await store.get_projection(org, "entitlement", "e-1")
    assert p is not None and (p.state, p.version, p.last_event_id) == ({"n": 2}, 2, second.id)


async def test_publish_function_stores_nothing_when_its_premise_fails(pg_url: str) -> None:
    store = pg_store(pg_url)[0]
    await store.connect()
    try:
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        version = (await store.subscribed_endpoints(org)).version
        assert version is not None
        seed = event(org)
        await store.publish([item(seed, [], ())], now=T0)
        await store.publish(
            [item(event(org), [], (ProjectionUpdate("entitlement", "e-1", lambda _: {"n": 1}),))]
        )
    finally:
        await store.close()
    key = (org, "entitlement", "e-1")
    fresh = event(org)
    current = Projection(org, "entitlement", "e-1", {"n": 1}, 1, T0, T0, seed.id)
    newer = Projection(org, "entitlement", "e-1", {"n": 9}, 2, T0, T0, fresh.id)
    deliveries = rows.delivery_rows([(org, fresh.id, pending(ep.id), T0)])
    planned = rows.dumps([{"organization_id": org, "version": version}])
    cas = store_base._compare_and_set_rows

    async def call(conn: Any, events: list[Any], projections: str, endpoints: str = planned) -> Any:
        answer = await conn.fetchval(
            *statement(
                "publish_in_one_round_trip",
                events=rows.event_rows(events),
                deliveries=deliveries,
                projections=projections,
                endpoints=endpoints,
            )
        )
        return orjson.loads(answer)

    conn = await asyncpg.connect(pg_url)
    try:
        # the projection is believed absent but exists: answered with its current row
        answer = await call(conn, [fresh], cas({key: newer}, {}, [key]))
        assert list(answer) == ["projections"]
        [row] = answer["projections"]
        assert (row["key"], row["version"], row["state"]) == ("e-1", 1, {"n": 1})
        # the endpoints were planned at a version they no longer have: answered with the org
        stale = rows.dumps([{"organization_id": org, "version": version - 1}])
        answer = await call(conn, [fresh], cas({key: newer}, {key: current}, [key]), stale)
        assert answer == {"endpoints": [org]}
        # TD001: one event of the batch is stored already
        with pytest.raises(asyncpg.PostgresError) as repeat:
            await call(conn, [fresh, seed], cas({}, {key: current}, []))
        assert repeat.value.sqlstate == "TD001"
        # none of it left anything behind
        assert await conn.fetchval("SELECT count(*) FROM events WHERE id = $1", fresh.id) == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM deliveries WHERE event_id = $1", fresh.id)
            == 0
        )
        state = await conn.fetchval("SELECT state::text FROM projections WHERE key = 'e-1'")
        assert orjson.loads(state) == {"n": 1}
        # with the versions as they are, the same call stores all of it
        ok = await call(conn, [fresh], cas({key: newer}, {key: current}, [key]))
        assert [row[1] for row in ok["stored"]] == [fresh.id]
        assert (
            await conn.fetchval("SELECT count(*) FROM deliveries WHERE event_id = $1", fresh.id)
            == 1
        )
        state = await conn.fetchval("SELECT state::text FROM projections WHERE key = 'e-1'")
        assert orjson.loads(state) == {"n": 9}
    finally:
        await conn.close()


async def test_an_endpoint_created_by_another_process_is_planned_for_at_the_next_publish(
    two_stores: tuple[Store, Store],
) -> None:
    publisher, other = two_stores
    org = await make_org(publisher)
    first = await make_endpoint(publisher, org)
    known = await publisher.subscribed_endpoints(org)
    assert [e.id for e in known.endpoints] == [first.id]
    assert await publisher.subscribed_endpoints(org) is known  # kept in memory

    def planned(ev: Any, subscribers: Any) -> PublishItem:
        ds = [pending(e.id) for e in subscribers.endpoints]
        return PublishItem(ev, ds, (), subscribers.version)

    second = await make_endpoint(other, org)
    stale = event(org)
    with pytest.raises(SubscribersChanged) as changed:
        await publisher.publish([planned(stale, known)], now=T0)
    assert changed.value.organization_ids == [org]
    assert await publisher.get_event(org, stale.id) is None  # nothing stored
    fresh = await publisher.subscribed_endpoints(org)
    assert [e.id for e in fresh.endpoints] == [first.id, second.id]
    [r] = await publisher.publish([planned(stale, fresh)], now=T0)
    page = await publisher.list_deliveries(
        org, DeliveryFilter(event_id=r.event.id), limit=10, cursor=None
    )
    assert sorted(d.endpoint_id for d in page.items) == sorted([first.id, second.id])
    # the locking path (a batch with a repeat) checks the version too
    assert await other.pause_endpoint(org, second.id, "maintenance", T0)
    with pytest.raises(SubscribersChanged):
        await publisher.publish([planned(stale, fresh), planned(event(org), fresh)], now=T0)


async def test_only_what_planning_reads_changes_the_endpoints_version(pg_url: str) -> None:
    store = pg_store(pg_url)[0]
    await store.connect()
    conn = await asyncpg.connect(pg_url)

    async def version(org: str) -> int:
        return int(
            await conn.fetchval("SELECT endpoints_version FROM organizations WHERE id = $1", org)
        )

    try:
        org, bystander = await make_org(store), await make_org(store)
        before = await version(org)
        ep = await make_endpoint(store, org)
        assert await version(org) == before + 1
        # the worker's bookkeeping leaves it alone
        await conn.execute(
            "UPDATE endpoints SET failure_streak = 3, last_success_at = 1 WHERE id = $1", ep.id
        )
        assert await version(org) == before + 1
        assert await store.pause_endpoint(org, ep.id, "maintenance", T0)
        assert await version(org) == before + 2
        assert await store.delete_endpoint(org, ep.id, T0)
        assert await version(org) == before + 3
        assert await version(bystander) == 0
    finally:
        await conn.close()
        await store.close()


async def test_delivery_history_reads_the_ascending_indexes_backward(pg_url: str) -> None:
    """Migration 0004: the history indexes are ascending (new deliveries append at the end of
    their range) and the newest-first history pages still come straight off them, no sort."""
    store = pg_store(pg_url, max_connections=2)[0]
    await store.connect()
    try:
        org = await make_org(store)
        endpoint = await make_endpoint(store, org)
        await store.publish([item(event(org), [pending(endpoint.id)]) for _ in range(5)], now=T0)
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        defs = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes")
        }
        assert defs["deliveries_org_seq"].endswith("(organization_id, seq)")
        assert defs["deliveries_endpoint_sequence"].endswith("(endpoint_id, sequence)")
        await conn.execute("SET enable_seqscan = off")
        for name, index, endpoint_id in [
            ("list_deliveries", "organization_id_seq_idx", "NULL"),
            ("list_deliveries_for_endpoint", "endpoint_id_sequence_idx", f"'{endpoint.id}'"),
        ]:
            query = QUERIES[name]
            values = {
                "organization_id": f"'{org}'",
                "endpoint_id": endpoint_id,
                "limit": "50",
            }
            args = [values.get(p, "NULL") for p in query.params]
            sql = query.sql
            for n in range(len(args), 0, -1):
                sql = sql.replace(f"${n}", args[n - 1])
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
            # each day partition's copy of the index (migration 0022), merged in order
            assert f"Index Scan Backward using deliveries_default_{index}" in plan, plan
            assert not [line for line in plan.splitlines() if "Sort  (" in line], plan
    finally:
        await conn.close()


async def _log_plans(conn: Any, plans: list[str]) -> Callable[[Any, Any], None]:
    """Have auto_explain send the plan of every statement run on `conn` (those inside
    functions too) to this client as log messages, kept in `plans`. Answers the listener, to
    remove before the connection goes back to its pool."""

    def listener(_conn: Any, message: Any) -> None:
        plans.append(message.message)

    conn.add_log_listener(listener)
    await conn.execute("LOAD 'auto_explain'")
    await conn.execute("SET auto_explain.log_min_duration = 0")
    await conn.execute("SET auto_explain.log_nested_statements = on")
    await conn.execute("SET client_min_messages = log")
    return listener


async def test_claims_and_outcomes_look_deliveries_up_by_key_on_a_small_table(pg_url: str) -> None:
    """On a table of some ten thousand deliveries, analyzed while none was leased, the claim and
    the outcome write must find their rows through an index, never by reading every delivery:
    a join there let the planner scan the whole table (and the dead versions the drain leaves)
    on each claim and each flush. Both plan modes are checked: asyncpg's prepared statements
    switch to the generic plan after five runs."""
    store = pg_store(pg_url, max_connections=2)[0]
    await store.connect()
    try:
        org = await make_org(store)
        endpoints = [await make_endpoint(store, org) for _ in range(5)]
        for _ in range(4):
            await store.publish(
                [item(event(org), [pending(ep.id) for ep in endpoints]) for _ in range(500)],
                now=T0,
            )
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("ANALYZE deliveries")
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM deliveries LIMIT 100")]
        outcome_rows = orjson.dumps(
            [
                {
                    "id": i,
                    "status": "succeeded",
                    "next_attempt_at": None,
                    "started_at": T0,
                    "last_status_code": 200,
                    "last_error": None,
                    "success": True,
                    "number": 1,
                    "duration_ms": 5.0,
                    "status_code": 200,
                    "error": None,
                    "response_excerpt": None,
                }
                for i in ids
            ]
        ).decode()
        endpoint_ids = sorted(ep.id for ep in endpoints)
        # the outcome write runs inside tidings_record_outcomes: auto_explain sends the plans
        # of the function's statements to this client as log messages
        plans: list[str] = []
        await _log_plans(conn, plans)
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            claim, *args = statement(
                "claim_due",
                worker_id="worker-1",
                now=T0 + 10,
                lease_until=T0 + 40,
                limit=200,
                due_from=-math.inf,
            )
            prepared = await conn.prepare("EXPLAIN " + claim)
            plan = "\n".join(r[0] for r in await prepared.fetch(*args))
            # the rows (at T0) live in the default partition; the days the migration made
            # ahead are empty, and a scan of their no page is what the planner rightly picks
            assert "Seq Scan on deliveries_default" not in plan, f"claim_due ({mode}):\n{plan}"
            assert "Index Scan using deliveries_" in plan, f"claim_due ({mode}):\n{plan}"
            plans.clear()
            async with conn.transaction():
                await conn.fetchval(
                    *statement(
                        "record_outcomes_in_one_round_trip",
                        worker_id="worker-1",
                        outcomes=outcome_rows,
                        now=T0 + 10,
                        ids=ids,
                        endpoint_ids=endpoint_ids,
                    )
                )
            await asyncio.sleep(0.05)  # the log messages arrive asynchronously
            update = [p for p in plans if "Update on deliveries" in p]
            assert update, f"record_outcomes ({mode}): no plan of its update in {plans}"
            assert "Seq Scan on deliveries_default" not in update[0], f"({mode}):\n{update[0]}"
            assert "Index Scan using deliveries_" in update[0], f"({mode}):\n{update[0]}"
    finally:
        await conn.close()


async def test_plans_made_on_empty_tables_do_not_outlive_their_growth(pg_url: str) -> None:
    """asyncpg prepares each statement once per connection, and PostgreSQL gives a prepared
    statement (and each statement inside a PL/pgSQL function) a generic plan after five runs,
    costed on the tables' size at that moment and kept until the next ANALYZE. A worker that
    starts on a new database makes those plans on near-empty tables: sequential scans, which
    then read every event or delivery on each claim as the tables grow (seen in the latency
    bench: all events read per claim, 3-8 ms at 6,000 events). Here the worker's statements run
    ten times on nearly empty tables, the tables grow to 3,000 events, and the next claim and
    outcome write must still find their rows through an index: the store's own statements
    because its connections plan each run (SESSION_SETTINGS), the statements inside
    tidings_record_outcomes because their cached plans are made without sequential scans
    (migration 0006)."""
    store, connector = pg_store(pg_url, min_connections=1, max_connections=1)
    await store.connect()
    try:
        org = await make_org(store)
        ep = await make_endpoint(store, org)

        async def claim_and_settle(limit: int) -> int:
            claimed = await store.claim_due("worker-1", T0 + 10, 30, limit)
            outcomes = [
                outcome(
                    cl.delivery.id,
                    ep.id,
                    DeliveryStatus.SUCCEEDED,
                    success=True,
                    at=T0 + 10,
                    code=200,
                )
                for cl in claimed
            ]
            await store.record_outcomes("worker-1", outcomes, T0 + 10)
            return len(claimed)

        for _ in range(10):
            await store.publish([item(event(org), [pending(ep.id)])], now=T0)
            assert await claim_and_settle(10) == 1
        for _ in range(6):
            await store.publish([item(event(org), [pending(ep.id)]) for _ in range(500)], now=T0)
        # the pool's one connection, where the statements above are prepared: the worker's
        # statements run again on it, as the store runs them, with their plans logged
        plans: list[str] = []
        async with connector._pool.acquire() as conn:
            listener = await _log_plans(conn, plans)
            claimed = await conn.fetch(
                *statement(
                    "claim_due",
                    worker_id="worker-1",
                    now=T0 + 10,
                    lease_until=T0 + 40,
                    limit=10,
                    due_from=-math.inf,
                )
            )
            assert len(claimed) == 10
            await conn.fetch(
                *statement(
                    "events_by_keys",
                    organization_ids=[org] * len(claimed),
                    event_ids=[r["event_id"] for r in claimed],
                )
            )
            outcomes = rows.outcome_attempt_rows(
                [
                    outcome(r["id"], ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0, code=200)
                    for r in claimed
                ]
            )
            await conn.fetchval(
                *statement(
                    "record_outcomes_in_one_round_trip",
                    worker_id="worker-1",
                    outcomes=outcomes,
                    now=T0 + 10,
                    ids=[r["id"] for r in claimed],
                    endpoint_ids=[ep.id],
                )
            )
            await asyncio.sleep(0.05)  # the log messages arrive asynchronously
            conn.remove_log_listener(listener)
    finally:
        await store.close()
    looked_up = {
        what: [p for p in plans if what in p]
        for what in ("UPDATE deliveries SET lease_owner", "SELECT * FROM events", "Update on")
    }
    for what, found in looked_up.items():
        assert found, f"no plan of {what!r} in {plans}"
        for plan in found:
            assert "Seq Scan on events" not in plan, plan
            assert "Seq Scan on deliveries_default" not in plan, plan  # where the rows (T0) are


async def test_publish_plans_made_on_empty_tables_end_with_the_statistics_pass(
    pg_url: str,
) -> None:
    """tidings_publish's statements are planned once per connection and kept until an ANALYZE
    of a table they read. Made on tables without statistics, the plans cannot tell an index
    that finds one row from one that finds all: ten single events to one endpoint on new
    tables, then 3,000 more, and the next publish still hashed every event of the
    organization and probed for an existing (event, endpoint) pair through the endpoint's
    index (every delivery of the endpoint), so each publish read what came before it (the wan
    bench's p99 at 500 events/s grew to 13 s). The workers' statistics pass (migration 0023)
    analyzes the grown tables, which ends those plans in every connection: the next publish on
    the same connection looks each event and pair up by its key."""
    store, connector = pg_store(pg_url, min_connections=1, max_connections=1)
    await store.connect()
    try:
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        for _ in range(10):
            await store.publish([item(event(org), [pending(ep.id)])], now=T0)
        for _ in range(6):
            await store.publish([item(event(org), [pending(ep.id)]) for _ in range(500)], now=T0)
        # (here, made blind, those plans read events_org_seq and the endpoint's index)
        await _publish_plans(connector, store, org, ep.id)
        await _flush_statistics(connector)
        analyzed = await store.refresh_statistics(ANALYZE_MIN_ROWS, ANALYZE_FRACTION)
        assert {"events", "deliveries_default"} <= set(analyzed), analyzed
        assert await store.refresh_statistics(ANALYZE_MIN_ROWS, ANALYZE_FRACTION) == []
        plans = await _publish_plans(connector, store, org, ep.id)
    finally:
        await store.close()
    for plan in plans:
        assert "Hash Join" not in plan and "Merge Join" not in plan, plan
        assert "Seq Scan on events" not in plan and "events_org_seq" not in plan, plan
        # the rows (at T0) live in the default partition; the days ahead are empty
        assert "deliveries_default_endpoint_id_sequence" not in plan, plan


async def _publish_plans(
    connector: PostgresConnector, store: Store, org: str, endpoint_id: str
) -> list[str]:
    """The plans of the deliveries' insert in one more single-event publish, made on the
    pool's one connection (where the function's plans are cached), as the store makes it."""
    plans: list[str] = []
    one = [item(event(org), [pending(endpoint_id)])]
    async with connector._pool.acquire() as conn:
        listener = await _log_plans(conn, plans)
        await conn.fetchval(
            *statement(
                "publish_in_one_round_trip",
                events=rows.event_rows([i.event for i in one]),
                deliveries=rows.delivery_rows(store_base._new_delivery_rows(one, T0)),
                projections="[]",
                endpoints="[]",
            )
        )
        await asyncio.sleep(0.05)  # the log messages arrive asynchronously
        conn.remove_log_listener(listener)
    inserts = [p for p in plans if "Insert on deliveries" in p]
    assert inserts, f"no plan of the deliveries' insert in {plans}"
    return inserts


async def _flush_statistics(connector: PostgresConnector) -> None:
    """A backend sends its counts of changed rows to pg_stat_user_tables at most once a second
    (after 10 s when idle): the pool's one connection sends them now."""
    async with connector._pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")


async def test_one_statistics_pass_at_a_time(pg_url: str) -> None:
    """A second process asking while one pass runs answers at once with nothing analyzed."""
    store, connector = pg_store(pg_url, min_connections=1, max_connections=1)
    await store.connect()
    try:
        org = await make_org(store)
        ep = await make_endpoint(store, org)
        await store.publish([item(event(org), [pending(ep.id)]) for _ in range(600)], now=T0)
        await _flush_statistics(connector)
        conn = await asyncpg.connect(pg_url)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tidings.statistics'))")
                assert await store.refresh_statistics(ANALYZE_MIN_ROWS, ANALYZE_FRACTION) == []
        finally:
            await conn.close()
        assert "events" in await store.refresh_statistics(ANALYZE_MIN_ROWS, ANALYZE_FRACTION)
    finally:
        await store.close()


def _index_scan_buffers(plan: dict[str, Any], index: str) -> int:
    """Shared buffers read by the plan's scans of `index`."""
    own = 0
    if plan.get("Index Name") == index:
        own = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return own + sum(_index_scan_buffers(p, index) for p in plan.get("Plans", []))


async def test_a_claim_from_the_floor_does_not_read_what_was_already_sent(pg_url: str) -> None:
    """The due index keeps an entry for each delivery already sent until VACUUM, all before
    the live ones: a claim from the start reads more of them with every delivery drained, a
    claim from the worker's floor only the live part. 13,000 deliveries are drained the way a
    worker drains them (claim, outcome), then the claim statement itself is run (and rolled
    back) from the start and from a floor one second below the earliest pending due time."""
    store = pg_store(pg_url, max_connections=2)[0]
    await store.connect()
    try:
        org = await make_org(store)
        endpoints = [await make_endpoint(store, org) for _ in range(10)]
        for second in range(15):  # 1,000 deliveries due at each of T0 .. T0+14
            await store.publish(
                [item(event(org), [pending(ep.id) for ep in endpoints]) for _ in range(100)],
                now=T0 + second,
            )
        drained = 0
        while drained < 13_000:
            claims = await store.claim_due("w", T0 + 100, 60.0, 500)
            await store.record_outcomes(
                "w",
                [
                    outcome(
                        cl.delivery.id,
                        cl.delivery.endpoint_id,
                        DeliveryStatus.SUCCEEDED,
                        success=True,
                        at=T0 + 50,
                    )
                    for cl in claims
                ],
                T0 + 51,
            )
            drained += len(claims)
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        buffers = {}
        for label, due_from in [("start", float("-inf")), ("floor", T0 + 13 - 1.0)]:
            tx = conn.transaction()
            await tx.start()
            try:
                claim, *args = statement(
                    "claim_due",
                    worker_id="w2",
                    now=T0 + 100,
                    lease_until=T0 + 160,
                    limit=200,
                    due_from=due_from,
                )
                explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim
                [plan] = orjson.loads(await conn.fetchval(explain, *args))
            finally:
                await tx.rollback()
            buffers[label] = _index_scan_buffers(plan["Plan"], "deliveries_due")
        assert buffers["floor"] <= 20, buffers
        assert buffers["start"] >= 3 * buffers["floor"], buffers  # what the floor saves
    finally:
        await conn.close()
