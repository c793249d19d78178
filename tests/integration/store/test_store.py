"""The store contract, run identically on SQLite and PostgreSQL (the `backend` fixture)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tidings.ids import new_id
from tidings.models import (
    ApiKey,
    DeliveryStatus,
    EndpointSecret,
    EndpointStatus,
    KeyKind,
    KeyScope,
    Organization,
    Partner,
    Projection,
)
from tidings.store.base import (
    Conflict,
    DeliveryFilter,
    NotFound,
    ProjectionUpdate,
    Store,
    TypeFilter,
)
from tidings.store.connect import open_store
from tidings.store.sql import FAST_PATHS, load_migrations, load_queries

from .helpers import (
    T0,
    endpoint,
    event,
    item,
    make_endpoint,
    make_org,
    outcome,
    pending,
    publish_one,
)

LEASE = 30.0


def test_both_dialects_define_the_same_queries() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    assert postgres.keys() >= FAST_PATHS  # one round trip for what the plain path does in several
    assert sqlite.keys() == postgres.keys() - FAST_PATHS
    assert "claim_due" in sqlite


# ---- migrations ----


async def test_migrations_apply_once_and_status_is_current(
    backend: str, fresh_database_url_factory: object
) -> None:
    make = fresh_database_url_factory
    assert callable(make)
    store = open_store(make(backend, migrated=False))
    await store.connect()
    try:
        before = await store.migration_status()
        assert before.current == 0 and before.latest >= 1 and not before.up_to_date
        applied = await store.migrate()
        assert applied == [m.version for m in load_migrations(store.dialect)]
        assert applied[-1] == before.latest
        assert await store.migrate() == []
        after = await store.migration_status()
        assert after.up_to_date and after.current == before.latest
        await store.ping()
    finally:
        await store.close()


# ---- organizations, keys, partners ----


async def test_organizations_keys_and_partners(store: Store) -> None:
    org = await make_org(store)
    got = await store.get_organization(org)
    assert got is not None and got.id == org and got.name == f"Org {org}"
    assert await store.get_organization("org_missing") is None

    key = ApiKey(id=new_id("key"), kind=KeyKind.ORGANIZATION, organization_id=org, created_at=T0)
    await store.create_api_key(key, "h-1")
    assert await store.find_api_key("h-1") == replace(key, scope=KeyScope.WRITE)  # written out
    assert await store.find_api_key("h-unknown") is None
    with pytest.raises(Conflict):
        await store.create_api_key(replace(key, id=new_id("key")), "h-1")
    with pytest.raises(Conflict):
        await make_org(store, org)

    platform = ApiKey(id=new_id("key"), kind=KeyKind.PLATFORM, organization_id=None, created_at=T0)
    await store.ensure_platform_key(platform, "p-1")
    await store.ensure_platform_key(replace(platform, id=new_id("key")), "p-1")
    assert await store.find_api_key("p-1") == replace(platform, scope=KeyScope.ADMIN)

    partner = Partner(organization_id=org, partner_uuid="p-uuid", name="Acme", created_at=T0)
    await store.create_partner(partner)
    with pytest.raises(Conflict):
        await store.create_partner(replace(partner, name="Again"))
    other = await make_org(store)
    await store.create_partner(replace(partner, organization_id=other))
    assert await store.list_partners(org) == [partner]


async def test_organizations_are_listed_oldest_first_in_pages(store: Store) -> None:
    # two share a created_at: their ids order them
    made = [("org-c", T0), ("org-b", T0 + 1), ("org-a", T0 + 1), ("org-d", T0 + 2), ("ü-e", T0 + 3)]
    for org_id, created_at in made:
        key = ApiKey(
            id=new_id("key"), kind=KeyKind.ORGANIZATION, organization_id=org_id, created_at=T0
        )
        await store.create_organization(
            Organization(id=org_id, name=f"Org {org_id}", created_at=created_at), key, org_id
        )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list_organizations(limit=2, cursor=cursor)
        seen += [o.id for o in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["org-c", "org-a", "org-b", "org-d", "ü-e"] and pages == 3
    first = (await store.list_organizations(limit=1, cursor=None)).items[0]
    assert first == Organization(id="org-c", name="Org org-c", created_at=T0)
    for bad in ("not a cursor!", "b3JnLWM"):  # garbage, and a bare base64 id
        with pytest.raises(ValueError):
            await store.list_organizations(limit=2, cursor=bad)


# ---- endpoints ----


async def test_endpoint_create_get_update_secrets(store: Store) -> None:
    org = await make_org(store)
    ep = endpoint(
        org,
        partner_ids=("p1",),
        accepted_schema_versions=(1, 2),
        headers={"X-A": "b"},
        rate_limit_per_second=2.5,
        description="d",
    )
    await store.create_endpoint(ep)
    assert await store.get_endpoint(org, ep.id) == ep
    with pytest.raises(Conflict):
        await store.create_endpoint(ep)

    changed = replace(ep, url="https://example.org/x", event_types=("a.b",), updated_at=T0 + 5)
    await store.update_endpoint(changed)
    assert await store.get_endpoint(org, ep.id) == changed
    with pytest.raises(NotFound):
        await store.update_endpoint(replace(ep, id="ep_missing"))

    secrets = (
        EndpointSecret(secret="new", created_at=T0 + 9),
        EndpointSecret(secret="whsec_abc", created_at=T0, expires_at=T0 + 100),
    )
    await store.set_endpoint_secrets(org, ep.id, secrets, T0 + 9)
    got = await store.get_endpoint(org, ep.id)
    assert got is not None and got.secrets == secrets and got.updated_at == T0 + 9
    with pytest.raises(NotFound):
        await store.set_endpoint_secrets(org, "ep_missing", secrets, T0)


async def test_endpoint_pagination_and_soft_delete(store: Store) -> None:
    org = await make_org(store)
    eps = [await make_endpoint(store, org) for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list_endpoints(org, limit=2, cursor=cursor)
        seen += [e.id for e in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [e.id for e in eps] and pages == 3

    with pytest.raises(ValueError):
        await store.list_endpoints(org, limit=2, cursor="not a cursor!")

    assert await store.delete_endpoint(org, eps[0].id, T0 + 1)
    assert not await store.delete_endpoint(org, eps[0].id, T0 + 2)
    assert await store.get_endpoint(org, eps[0].id) is None
    deleted = await store.get_endpoint(org, eps[0].id, include_deleted=True)
    assert deleted is not None and deleted.deleted_at == T0 + 1
    listed = await store.list_endpoints(org, limit=50, cursor=None)
    assert [e.id for e in listed.items] == [e.id for e in eps[1:]]
    subscribed = await store.list_subscribed_endpoints(org)
    assert {e.id for e in subscribed} == {e.id for e in eps[1:]}


async def test_delete_endpoint_fails_its_open_deliveries(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    _, [d1] = await publish_one(store, org, [ep.id])
    assert await store.delete_endpoint(org, ep.id, T0 + 1)
    got = await store.get_delivery(org, d1)
    assert got is not None and got.status == DeliveryStatus.FAILED
    assert got.last_error == "endpoint deleted"
    assert await store.claim_due("w", T0 + 10, LEASE, 10) == []


# ---- publishing ----


async def test_publish_stores_event_and_deliveries(store: Store) -> None:
    org = await make_org(store)
    ep1, ep2 = await make_endpoint(store, org), await make_endpoint(store, org)
    ev = event(org, partner_uuid="p1", subject="s-1", idempotency_key="k-1")
    skipped = pending(
        ep2.id,
        status=DeliveryStatus.SKIPPED,
        schema_version=None,
        skip_reason="schema_version_not_accepted",
    )
    d1 = pending(ep1.id)
    [res] = await store.publish([item(ev, [d1, skipped])], now=T0 + 50)
    assert res.created and res.event.seq > 0
    assert replace(res.event, seq=0) == ev
    assert await store.get_event(org, ev.id) == res.event

    got1 = await store.get_delivery(org, d1.id)
    assert got1 is not None
    assert (got1.status, got1.next_attempt_at, got1.created_at) == ("pending", T0 + 50, T0 + 50)
    assert got1.attempt_count == 0 and got1.series == 1 and got1.event_id == ev.id
    got2 = await store.get_delivery(org, skipped.id)
    assert got2 is not None and got2.status == DeliveryStatus.SKIPPED
    assert got2.skip_reason == "schema_version_not_accepted" and got2.next_attempt_at is None


async def test_publish_is_idempotent_by_id_and_by_key(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    first = event(org, idempotency_key="key-1")
    [r1] = await store.publish([item(first, [pending(ep.id)])], now=T0)

    same_id = replace(first, idempotency_key=None, data={"other": True})
    same_key = replace(first, id=new_id("evt"))
    results = await store.publish(
        [item(same_id, [pending(ep.id)]), item(same_key, [pending(ep.id)])], now=T0
    )
    assert [r.created for r in results] == [False, False]
    assert results[0].event == r1.event and results[1].event == r1.event
    page = await store.list_deliveries(org, DeliveryFilter(), limit=50, cursor=None)
    assert len(page.items) == 1
    # the same event twice in one batch: stored once
    twice = event(org)
    batch = await store.publish([item(twice, [pending(ep.id)]), item(twice, [pending(ep.id)])])
    assert [r.created for r in batch] == [True, False]
    assert batch[0].event == batch[1].event
    assert (await store.count_deliveries_by_status()) == {"pending": 2}


async def test_event_ids_are_scoped_by_organization(store: Store) -> None:
    a, b = await make_org(store), await make_org(store)
    ev = event(a, idempotency_key="same")
    [ra] = await store.publish([item(ev, [])])
    [rb] = await store.publish([item(replace(ev, organization_id=b), [])])
    assert ra.created and rb.created and ra.event.seq != rb.event.seq
    assert await store.get_event(b, ev.id) == rb.event


async def test_get_events_answers_the_organizations_own_by_id(store: Store) -> None:
    a, b = await make_org(store), await make_org(store)
    mine, theirs = event(a), event(b)
    stored = await store.publish([item(mine, []), item(theirs, [])])
    got = await store.get_events(a, [mine.id, theirs.id, "evt_unknown", mine.id])
    assert got == {mine.id: stored[0].event}
    assert await store.get_events(a, []) == {}


async def test_projections_applied_versioned_and_skipped(store: Store) -> None:
    org = await make_org(store)
    seen: list[Projection | None] = []

    def count_up(current: Projection | None) -> dict[str, object] | None:
        seen.append(current)
        n = 0 if current is None else int(current.state["n"])
        return {"n": n + 1}

    def leave(current: Projection | None) -> dict[str, object] | None:
        seen.append(current)
        return None

    e1, e2, e3 = event(org), event(org), event(org)
    await store.publish(
        [item(e1, [], (ProjectionUpdate("compliance", "c-1", count_up),))], now=T0 + 1
    )
    await store.publish(
        [item(e2, [], (ProjectionUpdate("compliance", "c-1", count_up),))], now=T0 + 2
    )
    await store.publish([item(e3, [], (ProjectionUpdate("compliance", "c-1", leave),))], now=T0 + 3)
    p = await store.get_projection(org, "compliance", "c-1")
    assert p is not None
    assert (p.state, p.version, p.last_event_id) == ({"n": 2}, 2, e2.id)
    assert (p.updated_at, p.source_created_at) == (T0 + 2, e2.created_at)
    assert seen[0] is None and seen[2] == p
    assert await store.get_projection(org, "compliance", "other") is None
    other_org = await make_org(store)
    assert await store.get_projection(other_org, "compliance", "c-1") is None


async def test_projection_not_applied_for_idempotent_repeat(store: Store) -> None:
    org = await make_org(store)

    def bump(current: Projection | None) -> dict[str, object] | None:
        return {"n": 1 if current is None else int(current.state["n"]) + 1}

    ev = event(org)
    update = (ProjectionUpdate("locks", "l", bump),)
    await store.publish([item(ev, [], update)])
    [again] = await store.publish([item(ev, [], update)])
    assert not again.created
    p = await store.get_projection(org, "locks", "l")
    assert p is not None and (p.state, p.version, p.last_event_id) == ({"n": 1}, 1, ev.id)
    # a batch holding the repeat and a new event applies only the new one
    ev2 = event(org)
    results = await store.publish([item(ev, [], update), item(ev2, [], update)])
    assert [r.created for r in results] == [False, True]
    p = await store.get_projection(org, "locks", "l")
    assert p is not None and (p.state, p.version, p.last_event_id) == ({"n": 2}, 2, ev2.id)


async def test_event_feed_cursor_types_and_fingerprint(store: Store) -> None:
    org = await make_org(store)
    types = ["order.created", "order.paid", "kyc.passed", "orders.x"]
    stored = [(await store.publish([item(event(org, type=t), [])]))[0].event for t in types]
    page = await store.list_events(org, after=None, types=TypeFilter(), limit=3)
    assert [e.id for e in page.items] == [e.id for e in stored[:3]]
    rest = await store.list_events(org, after=page.next_cursor, types=TypeFilter(), limit=3)
    assert [e.id for e in rest.items] == [stored[3].id]
    empty = await store.list_events(org, after=rest.next_cursor, types=TypeFilter(), limit=3)
    assert empty.items == [] and empty.next_cursor == rest.next_cursor

    flt = TypeFilter(exact=("kyc.passed",), prefixes=("order.",))
    filtered = await store.list_events(org, after=None, types=flt, limit=10)
    assert [e.type for e in filtered.items] == ["order.created", "order.paid", "kyc.passed"]

    count, last, erasures = await store.events_page_fingerprint(org, after=None, types=flt, limit=2)
    assert (count, last, erasures) == (2, stored[1].seq, 0)
    assert await store.events_page_fingerprint(
        org, after=empty.next_cursor, types=TypeFilter(), limit=5
    ) == (0, 0, 0)
    with pytest.raises(ValueError):
        await store.list_events(org, after="%%%", types=TypeFilter(), limit=1)
    other = await make_org(store)
    assert (await store.list_events(other, after=None, types=TypeFilter(), limit=9)).items == []


# ---- claiming ----


async def test_claim_leases_due_deliveries_with_event_and_endpoint(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ev1, [d1] = await publish_one(store, org, [ep.id], now=T0)
    _, [d2] = await publish_one(store, org, [ep.id], now=T0 + 1)
    _, [d3] = await publish_one(store, org, [ep.id], now=T0 + 100)  # not yet due

    claimed = await store.claim_due("w1", T0 + 10, LEASE, 10)
    assert [c.delivery.id for c in claimed] == [d1, d2]
    first = claimed[0]
    assert first.event == ev1 and first.endpoint == ep
    assert first.delivery.lease_owner == "w1"
    assert first.delivery.lease_expires_at == T0 + 10 + LEASE
    # leased: nobody else gets them until the lease expires
    assert await store.claim_due("w2", T0 + 11, LEASE, 10) == []
    again = await store.claim_due("w2", T0 + 10 + LEASE + 1, LEASE, 10)
    assert [c.delivery.id for c in again] == [d1, d2]
    assert all(c.delivery.lease_owner == "w2" for c in again)
    # at T0+100 w2's lease is over too, and d3 became due
    later = await store.claim_due("w3", T0 + 100, LEASE, 10)
    assert [c.delivery.id for c in later] == [d1, d2, d3]


async def test_claim_respects_limit_and_order(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ids = [(await publish_one(store, org, [ep.id], now=T0 + i))[1][0] for i in (3, 1, 2)]
    claimed = await store.claim_due("w", T0 + 10, LEASE, 2)
    assert [c.delivery.id for c in claimed] == [ids[1], ids[2]]


async def test_claim_from_a_floor_skips_only_what_is_due_before_it(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ids = [(await publish_one(store, org, [ep.id], now=T0 + i))[1][0] for i in (1, 2, 3)]
    claimed = await store.claim_due("w", T0 + 10, LEASE, 10, due_from=T0 + 2)
    assert [c.delivery.id for c in claimed] == ids[1:]  # due at T0+2 and after
    rest = await store.claim_due("w", T0 + 10, LEASE, 10)  # from the start
    assert [c.delivery.id for c in rest] == ids[:1]


# ---- outcomes ----


async def test_outcomes_update_deliveries_attempts_and_health(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ids = [(await publish_one(store, org, [ep.id]))[1][0] for _ in range(3)]
    await store.claim_due("w", T0 + 1, LEASE, 10)
    health = await store.record_outcomes(
        "w",
        [
            outcome(
                ids[0],
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=T0 + 2,
                next_attempt_at=T0 + 60,
                code=500,
                error="HTTP 500",
            ),
            outcome(
                ids[1],
                ep.id,
                DeliveryStatus.FAILED,
                success=False,
                at=T0 + 2,
                code=410,
                error="HTTP 410",
            ),
        ],
        T0 + 3,
    )
    assert len(health) == 1
    h = health[0]
    assert (h.endpoint_id, h.organization_id, h.status) == (ep.id, org, EndpointStatus.ACTIVE)
    assert (h.failure_streak, h.failing_since, h.last_success_at) == (2, T0 + 3, None)

    retried = await store.get_delivery(org, ids[0])
    assert retried is not None
    assert (retried.status, retried.next_attempt_at, retried.attempt_count) == (
        "pending",
        T0 + 60,
        1,
    )
    assert (retried.last_status_code, retried.last_error, retried.lease_owner) == (
        500,
        "HTTP 500",
        None,
    )
    failed = await store.get_delivery(org, ids[1])
    assert failed is not None and failed.status == DeliveryStatus.FAILED
    [attempt] = await store.list_attempts(org, ids[0])
    assert (attempt.number, attempt.status_code, attempt.series) == (1, 500, 1)

    # more failures add up; a success resets
    await store.claim_due("w", T0 + 61, LEASE, 10)
    [h2] = await store.record_outcomes(
        "w",
        [
            outcome(
                ids[0],
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=T0 + 61,
                number=2,
                next_attempt_at=T0 + 200,
            )
        ],
        T0 + 62,
    )
    assert (h2.failure_streak, h2.failing_since) == (3, T0 + 3)
    claimed = await store.claim_due("w", T0 + 201, LEASE, 10)
    assert {c.delivery.id for c in claimed} == {ids[0], ids[2]}
    [h3] = await store.record_outcomes(
        "w",
        [
            outcome(
                ids[0],
                ep.id,
                DeliveryStatus.SUCCEEDED,
                success=True,
                at=T0 + 201,
                number=3,
                code=200,
            ),
            outcome(ids[2], ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 201, code=204),
        ],
        T0 + 202,
    )
    assert (h3.failure_streak, h3.failing_since, h3.last_success_at) == (0, None, T0 + 202)
    done = await store.get_delivery(org, ids[0])
    assert done is not None and done.status == DeliveryStatus.SUCCEEDED and done.attempt_count == 3
    assert [a.number for a in await store.list_attempts(org, ids[0])] == [1, 2, 3]
    assert await store.worst_endpoints(5) == []


async def test_failure_after_success_in_one_batch_counts_from_the_success(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ids = [(await publish_one(store, org, [ep.id]))[1][0] for _ in range(3)]
    await store.claim_due("w", T0 + 1, LEASE, 10)
    [h] = await store.record_outcomes(
        "w",
        [
            outcome(
                ids[0],
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=T0 + 1,
                next_attempt_at=T0 + 9,
            ),
            outcome(ids[1], ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 1),
            outcome(
                ids[2],
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=T0 + 1,
                next_attempt_at=T0 + 9,
            ),
        ],
        T0 + 2,
    )
    assert (h.failure_streak, h.failing_since, h.last_success_at) == (1, T0 + 2, T0 + 2)
    assert await store.worst_endpoints(5) == [(org, ep.id, 1)]


async def test_outcome_without_the_lease_is_dropped(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    _, [d] = await publish_one(store, org, [ep.id])
    await store.claim_due("w1", T0 + 1, LEASE, 10)
    await store.claim_due("w2", T0 + 1 + LEASE + 1, LEASE, 10)  # w1's lease expired
    health = await store.record_outcomes(
        "w1", [outcome(d, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 40)], T0 + 41
    )
    assert health == []
    got = await store.get_delivery(org, d)
    assert got is not None and got.status == DeliveryStatus.PENDING and got.lease_owner == "w2"
    assert await store.list_attempts(org, d) == []


async def test_release_gives_leases_back(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    _, [d] = await publish_one(store, org, [ep.id])
    woken: list[int] = []
    store.add_wakeup_listener(lambda: woken.append(1))
    await store.claim_due("w", T0 + 1, LEASE, 10)
    assert await store.release("other", [d], T0 + 5, now=T0 + 5) == 0
    assert await store.release("w", [d], T0 + 5, now=T0 + 5) == 1
    assert woken == [1]
    got = await store.get_delivery(org, d)
    assert got is not None and got.lease_owner is None and got.next_attempt_at == T0 + 5
    assert [c.delivery.id for c in await store.claim_due("w2", T0 + 5, LEASE, 10)] == [d]


async def test_release_gives_each_delivery_its_own_due_time(store: Store) -> None:
    org = await make_org(store)
    endpoints = [(await make_endpoint(store, org)).id for _ in range(3)]
    _, ids = await publish_one(store, org, endpoints)
    claimed = [c.delivery.id for c in await store.claim_due("w", T0 + 1, LEASE, 10)]
    assert sorted(claimed) == sorted(ids)
    due = {ids[0]: T0 + 30, ids[1]: T0 + 5, ids[2]: T0 + 60}
    assert await store.release("w", list(due), list(due.values()), now=T0 + 1) == 3
    for delivery_id, at in due.items():
        got = await store.get_delivery(org, delivery_id)
        assert got is not None and got.lease_owner is None and got.next_attempt_at == at
    assert [c.delivery.id for c in await store.claim_due("w2", T0 + 10, LEASE, 10)] == [ids[1]]
    with pytest.raises(ValueError):
        await store.release("w2", [ids[1]], [T0, T0], now=T0)


# ---- pause, resume, replay ----


async def test_pause_holds_and_resume_releases(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    _, [inflight] = await publish_one(store, org, [ep.id])
    await store.claim_due("w", T0 + 1, LEASE, 10)
    _, [waiting] = await publish_one(store, org, [ep.id], now=T0 + 2)

    assert await store.pause_endpoint(org, ep.id, "failing", T0 + 3)
    assert not await store.pause_endpoint(org, ep.id, "again", T0 + 4)
    paused = await store.get_endpoint(org, ep.id)
    assert paused is not None and paused.status == EndpointStatus.PAUSED
    assert paused.pause_reason == "failing"
    held = await store.get_delivery(org, waiting)
    assert held is not None and held.status == DeliveryStatus.HELD
    assert await store.claim_due("w", T0 + 10, LEASE, 10) == []

    # the in-flight attempt comes back wanting a retry: it is held too
    [h] = await store.record_outcomes(
        "w",
        [
            outcome(
                inflight,
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=T0 + 5,
                next_attempt_at=T0 + 30,
            )
        ],
        T0 + 6,
    )
    assert h.status == EndpointStatus.PAUSED and h.failure_streak == 1
    got = await store.get_delivery(org, inflight)
    assert got is not None and got.status == DeliveryStatus.HELD

    woken: list[int] = []
    store.add_wakeup_listener(lambda: woken.append(1))
    assert await store.resume_endpoint(org, ep.id, T0 + 100) == 2
    assert woken == [1]
    resumed = await store.get_endpoint(org, ep.id)
    assert resumed is not None and resumed.status == EndpointStatus.ACTIVE
    assert resumed.failure_streak == 0 and resumed.pause_reason is None
    claimed = await store.claim_due("w", T0 + 100, LEASE, 10)
    assert {c.delivery.id for c in claimed} == {inflight, waiting}
    assert all(c.delivery.next_attempt_at == T0 + 100 for c in claimed)


async def test_replay_starts_a_new_series(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    _, [d] = await publish_one(store, org, [ep.id])
    await store.claim_due("w", T0 + 1, LEASE, 10)
    await store.record_outcomes(
        "w", [outcome(d, ep.id, DeliveryStatus.FAILED, success=False, at=T0 + 1)], T0 + 2
    )
    replayed = await store.replay_delivery(org, d, T0 + 50)
    assert replayed is not None
    assert (replayed.status, replayed.series, replayed.attempt_count) == ("pending", 2, 0)
    assert replayed.next_attempt_at == T0 + 50 and replayed.lease_owner is None
    assert await store.replay_delivery(org, "dlv_missing", T0) is None
    other = await make_org(store)
    assert await store.replay_delivery(other, d, T0) is None
    await store.claim_due("w", T0 + 50, LEASE, 10)
    await store.record_outcomes(
        "w",
        [outcome(d, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 51, number=2)],
        T0 + 52,
    )
    attempts = await store.list_attempts(org, d)
    assert [(a.number, a.series) for a in attempts] == [(1, 1), (2, 2)]


async def test_replay_endpoint_deliveries_by_window_and_status(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    ids = [(await publish_one(store, org, [ep.id], now=T0 + i))[1][0] for i in range(4)]
    await store.claim_due("w", T0 + 10, LEASE, 10)
    await store.record_outcomes(
        "w",
        [
            outcome(ids[0], ep.id, DeliveryStatus.FAILED, success=False, at=T0 + 10),
            outcome(ids[1], ep.id, DeliveryStatus.FAILED, success=False, at=T0 + 10),
            outcome(ids[2], ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 10),
            outcome(ids[3], ep.id, DeliveryStatus.FAILED, success=False, at=T0 + 10),
        ],
        T0 + 11,
    )
    n = await store.replay_endpoint_deliveries(
        org, ep.id, since=T0 + 1, until=T0 + 3, statuses=[DeliveryStatus.FAILED], now=T0 + 20
    )
    assert n == 1
    statuses = [(await store.get_delivery(org, i)).status for i in ids]  # type: ignore[union-attr]
    assert statuses == ["failed", "pending", "succeeded", "failed"]
    n = await store.replay_endpoint_deliveries(
        org,
        ep.id,
        since=T0,
        until=None,
        statuses=[DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED],
        now=T0 + 20,
    )
    assert n == 3


async def test_missing_deliveries_can_be_added(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    late = await make_endpoint(store, org)
    e1, _ = await publish_one(store, org, [ep.id], type="order.created")
    e2, _ = await publish_one(store, org, [ep.id], type="kyc.passed")
    e3, _ = await publish_one(store, org, [ep.id, late.id], type="order.paid")
    missing = await store.events_without_delivery(
        org, late.id, since=T0, until=None, types=TypeFilter(prefixes=("order.",)), limit=10
    )
    assert [e.id for e in missing] == [e1.id]
    everything = await store.events_without_delivery(
        org, late.id, since=T0, until=None, types=TypeFilter(), limit=10
    )
    assert [e.id for e in everything] == [e1.id, e2.id]
    woken: list[int] = []
    store.add_wakeup_listener(lambda: woken.append(1))
    added = await store.add_deliveries(
        org, [(e1.id, pending(late.id)), (e3.id, pending(late.id))], T0 + 100
    )
    assert added == 1 and woken == [1]
    page = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=late.id), limit=10, cursor=None
    )
    assert {d.event_id for d in page.items} == {e1.id, e3.id}


# ---- history, retention, stats ----


async def test_delivery_history_newest_first_with_filters(store: Store) -> None:
    org = await make_org(store)
    ep1, ep2 = await make_endpoint(store, org), await make_endpoint(store, org)
    all_ids: list[str] = []
    for i in range(3):
        _, ids = await publish_one(store, org, [ep1.id, ep2.id], now=T0 + i)
        all_ids += ids
    page = await store.list_deliveries(org, DeliveryFilter(), limit=4, cursor=None)
    assert [d.id for d in page.items] == list(reversed(all_ids))[:4]
    rest = await store.list_deliveries(org, DeliveryFilter(), limit=4, cursor=page.next_cursor)
    assert [d.id for d in rest.items] == list(reversed(all_ids))[4:]
    assert rest.next_cursor is None
    by_ep = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=ep2.id, created_after=T0 + 1), limit=10, cursor=None
    )
    assert [d.id for d in by_ep.items] == [all_ids[5], all_ids[3]]
    window = await store.list_deliveries(
        org,
        DeliveryFilter(created_before=T0 + 1, status=DeliveryStatus.PENDING),
        limit=10,
        cursor=None,
    )
    assert {d.id for d in window.items} == set(all_ids[:2])
    by_event = await store.list_deliveries(
        org, DeliveryFilter(event_id=by_ep.items[0].event_id), limit=10, cursor=None
    )
    assert {d.id for d in by_event.items} == {all_ids[4], all_ids[5]}
    with pytest.raises(ValueError):
        await store.list_deliveries(org, DeliveryFilter(), limit=4, cursor="abc")


async def test_an_endpoints_history_pages_by_its_sequence_even_past_a_purged_cursor(
    store: Store,
) -> None:
    """An endpoint's history, newest first, walks deliveries_endpoint_sequence (issue 25): the
    seq cursor is read as its row's sequence, or the highest below it when retention purged
    that row; with an event-type filter too."""
    org = await make_org(store)
    ep, other = await make_endpoint(store, org), await make_endpoint(store, org)
    ids: list[str] = []
    for i in range(7):
        _, made = await publish_one(store, org, [ep.id, other.id], now=T0 + i)
        ids.append(made[0])
    newest_first = list(reversed(ids))
    for flt in (
        DeliveryFilter(endpoint_id=ep.id),
        DeliveryFilter(endpoint_id=ep.id, event_types=TypeFilter(prefixes=("order.",))),
    ):
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list_deliveries(org, flt, limit=3, cursor=cursor)
            seen += [d.id for d in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == newest_first
    first = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=ep.id), limit=3, cursor=None
    )
    assert [d.sequence for d in first.items] == [7, 6, 5]
    # the cursor's row goes (erased, so skipped, then purged as retention would)
    gone = first.items[-1]
    erased = await store.get_event(org, gone.event_id)
    assert erased is not None
    await store.erase_events(org, [erased], [], T0 + 50)
    # a cutoff on a day's boundary: PostgreSQL's row purge stops at the start of the cutoff's
    # day (the rest of it goes with its day partitions, test_history_partitions.py)
    assert await store.purge_history(T0 + 86_400, 100) >= 1
    assert await store.get_delivery(org, gone.id) is None
    rest = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=ep.id), limit=10, cursor=first.next_cursor
    )
    assert [d.id for d in rest.items] == newest_first[3:]


async def test_purge_keeps_recent_and_open_history(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    old_done_event, [old_done] = await publish_one(store, org, [ep.id], now=T0)
    old_open_event, [old_open] = await publish_one(store, org, [ep.id], now=T0)
    later = T0 + 86_400  # the next day: the cutoff below is that day's start (see above)
    recent_event, [recent] = await publish_one(
        store, org, [ep.id], now=later + 1000, created_at=later + 1000
    )
    await store.claim_due("w", T0 + 1, LEASE, 1)
    await store.record_outcomes(
        "w",
        [outcome(old_done, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 1)],
        T0 + 1,
    )
    await store.claim_due("w", later + 1001, LEASE, 10)
    await store.record_outcomes(
        "w",
        [
            outcome(recent, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=later + 1001),
            outcome(
                old_open,
                ep.id,
                DeliveryStatus.PENDING,
                success=False,
                at=later + 1001,
                next_attempt_at=later + 5000,
            ),
        ],
        later + 1001,
    )
    total = 0
    while (n := await store.purge_history(later, batch_size=1)) > 0:
        total += n
    assert total == 2  # the finished old delivery and its event
    assert await store.get_delivery(org, old_done) is None
    assert await store.list_attempts(org, old_done) == []
    assert await store.get_event(org, old_done_event.id) is None
    assert await store.get_delivery(org, old_open) is not None
    assert await store.get_event(org, old_open_event.id) is not None
    assert await store.get_delivery(org, recent) is not None
    assert await store.get_event(org, recent_event.id) is not None


async def test_backlog_and_counts(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    paused = await make_endpoint(store, org)
    await store.pause_endpoint(org, paused.id, "manual", T0)
    await publish_one(store, org, [ep.id], now=T0 + 1)
    await publish_one(store, org, [ep.id], now=T0 + 2)
    await publish_one(store, org, [ep.id], now=T0 + 50)
    stats = await store.backlog_stats(T0 + 10)
    assert (stats.due, stats.oldest_due_at) == (2, T0 + 1)
    assert (await store.backlog_stats(T0)).due == 0
    assert (await store.backlog_stats(T0)).oldest_due_at is None
    assert await store.count_deliveries_by_status() == {"pending": 3}
    assert await store.count_endpoints_by_status() == {"active": 1, "paused": 1}


async def test_wakeup_listener_called_after_publish(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    woken: list[int] = []
    store.add_wakeup_listener(lambda: woken.append(1))
    await store.publish([item(event(org), [])])
    assert woken == []
    await publish_one(store, org, [ep.id])
    assert woken == [1]


# ---- tenant scoping ----


async def test_another_organization_cannot_reach_anything(store: Store) -> None:
    a, b = await make_org(store), await make_org(store)
    ep = await make_endpoint(store, a)
    ev, [d] = await publish_one(store, a, [ep.id])
    assert await store.get_endpoint(b, ep.id) is None
    assert await store.get_event(b, ev.id) is None
    assert await store.get_delivery(b, d) is None
    assert await store.list_attempts(b, d) == []
    assert (await store.list_deliveries(b, DeliveryFilter(), limit=9, cursor=None)).items == []
    assert (await store.list_endpoints(b, limit=9, cursor=None)).items == []
    assert not await store.delete_endpoint(b, ep.id, T0)
    assert not await store.pause_endpoint(b, ep.id, "x", T0)
    assert await store.resume_endpoint(b, ep.id, T0) == 0
    with pytest.raises(NotFound):
        await store.update_endpoint(replace(ep, organization_id=b, url="https://evil.test"))
    assert (
        await store.replay_endpoint_deliveries(
            b, ep.id, since=0, until=None, statuses=list(DeliveryStatus), now=T0
        )
        == 0
    )
    still = await store.get_endpoint(a, ep.id)
    assert still is not None and still.url == ep.url and still.deleted_at is None


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    org = await make_org(store)
    key = ApiKey(id=new_id("key"), kind=KeyKind.ORGANIZATION, organization_id=org, created_at=T0)
    await store.create_api_key(key, "taken")
    second = new_id("org")
    other_key = replace(key, id=new_id("key"), organization_id=second)
    with pytest.raises(Conflict):
        await store.create_organization(
            Organization(id=second, name="x", created_at=T0), other_key, "taken"
        )
    assert await store.get_organization(second) is None
    await store.ping()  # the connection is usable afterwards


async def test_expired_lease_on_a_paused_or_deleted_endpoint_is_not_sent(store: Store) -> None:
    org = await make_org(store)
    paused, deleted = await make_endpoint(store, org), await make_endpoint(store, org)
    _, [d_paused, d_deleted] = await publish_one(store, org, [paused.id, deleted.id])
    await store.claim_due("crashed", T0 + 1, LEASE, 10)  # this worker never reports back
    await store.pause_endpoint(org, paused.id, "manual", T0 + 2)
    await store.delete_endpoint(org, deleted.id, T0 + 2)
    got = await store.get_delivery(org, d_paused)
    assert got is not None and got.status == DeliveryStatus.PENDING  # still in flight

    assert await store.claim_due("w", T0 + 2 + LEASE, LEASE, 10) == []
    held = await store.get_delivery(org, d_paused)
    assert held is not None and held.status == DeliveryStatus.HELD and held.lease_owner is None
    failed = await store.get_delivery(org, d_deleted)
    assert failed is not None and failed.status == DeliveryStatus.FAILED
    assert await store.resume_endpoint(org, paused.id, T0 + 100) == 1


@pytest.mark.parametrize(
    "data",
    [
        {"nested": {"x": [1.5, None, True, "é"]}, "ü": "ß"},
        ["a", 1, {"b": None}],
        "plain text",
        42,
        None,
    ],
)
async def test_event_json_round_trips(store: Store, data: object) -> None:
    org = await make_org(store)
    ev = event(org, data=data, attributes={"k": ["v", 2]}, partner_uuid=None, subject=None)
    [res] = await store.publish([item(ev, [])])
    got = await store.get_event(org, ev.id)
    assert got == res.event and got is not None
    assert got.data == data and got.attributes == {"k": ["v", 2]}


async def test_a_batch_keeps_its_order_and_defaults_now_to_created_at(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org)
    events = [event(org, created_at=T0 - 3600 + i) for i in range(5)]
    results = await store.publish([item(e, [pending(ep.id)]) for e in events])
    seqs = [r.event.seq for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    page = await store.list_events(org, after=None, types=TypeFilter(), limit=10)
    assert [e.id for e in page.items] == [e.id for e in events]
    history = await store.list_deliveries(org, DeliveryFilter(), limit=10, cursor=None)
    assert sorted(d.next_attempt_at or 0 for d in history.items) == [e.created_at for e in events]
