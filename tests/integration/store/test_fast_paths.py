"""The PostgreSQL fast paths (one round trip: tidings_publish, tidings_record_outcomes) are the
same operations as the plain paths every dialect runs: the same cases, run through each on a
database of its own, answer the same and leave the same rows behind."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tidings.models import DeliveryStatus, Projection
from tidings.store.base import (
    ProjectionUpdate,
    PublishItem,
    PublishResult,
    Store,
    SubscribersChanged,
)
from tidings.store.postgres import PostgresConnector

from .helpers import T0, endpoint, event, item, make_org, outcome, pending

pytestmark = pytest.mark.postgres

Case = Callable[[Store, Callable[[str], str]], Awaitable[list[Any]]]
# What differs by construction: sequence numbers (a fast-path call refused has used some).
SEQUENCES = {"seq"}
TABLES = [
    "organizations",
    "endpoints",
    "events",
    "deliveries",
    "attempts",
    "projections",
    "endpoint_sequences",
    "subject_heads",
]


def bump(current: Projection | None) -> dict[str, object] | None:
    return {"n": 1 if current is None else int(current.state["n"]) + 1}


def keep_older(current: Projection | None) -> dict[str, object] | None:
    return None if current is not None and int(current.state["n"]) >= 2 else bump(current)


async def publishes(store: Store, ids: Callable[[str], str]) -> list[Any]:
    org = await make_org(store, ids("org"))
    eps = [endpoint(org, id=ids("ep")) for _ in range(3)]
    for ep in eps:
        await store.create_endpoint(ep)
    subscribers = await store.subscribed_endpoints(org)
    answers: list[Any] = []

    def planned(n: int, updates: tuple[ProjectionUpdate, ...] = ()) -> PublishItem:
        # every other event carries a correlation id (the fast path writes the column too)
        ev = event(org, id=ids("evt"), created_at=T0 + n,
                   correlation_id=f"req-{n}" if n % 2 else None)  # fmt: skip
        ds = [pending(ep.id, id=ids("dlv")) for ep in eps]
        return PublishItem(ev, ds, updates, subscribers.version)

    counter = (ProjectionUpdate("entitlement", "e-1", bump),)
    first = planned(1, counter)
    answers.append(await store.publish([first], now=T0 + 1))
    # a batch of new events touching one key twice and another once
    batch = [planned(2, counter), planned(3, (*counter, ProjectionUpdate("locks", "o", bump)))]
    answers.append(await store.publish(batch, now=T0 + 2))
    # a repeat, alone and within a batch: answered as stored, nothing applied twice
    answers.append(await store.publish([first], now=T0 + 3))
    answers.append(await store.publish([first, planned(4, counter)], now=T0 + 4))
    # an update that leaves the state as it is
    answers.append(
        await store.publish([planned(5, (ProjectionUpdate("locks", "o", keep_older),))], now=T0 + 5)
    )
    # endpoints changed since planning: nothing stored, the caller re-plans
    await store.pause_endpoint(org, eps[0].id, "manual", T0 + 6)
    with pytest.raises(SubscribersChanged):
        await store.publish([planned(6)], now=T0 + 6)
    fresh = await store.subscribed_endpoints(org)
    answers.append([e.id for e in fresh.endpoints])
    ev = event(org, id=ids("evt"), created_at=T0 + 7)
    ds = [pending(ep.id, id=ids("dlv")) for ep in eps]
    answers.append(await store.publish([PublishItem(ev, ds, counter, fresh.version)], now=T0 + 7))
    return answers


async def outcomes(store: Store, ids: Callable[[str], str]) -> list[Any]:
    org = await make_org(store, ids("org"))
    a, b, paused = (endpoint(org, id=ids("ep")) for _ in range(3))
    for ep in (a, b, paused):
        await store.create_endpoint(ep)
    for n in range(4):
        ev = event(org, id=ids("evt"), created_at=T0 + n)
        ds = [pending(ep.id, id=ids("dlv")) for ep in (a, b, paused)]
        await store.publish([item(ev, ds)], now=T0)
    claims = await store.claim_due("w", T0 + 1, 30.0, 100)
    by_endpoint: dict[str, list[str]] = {}
    for c in sorted(claims, key=lambda c: c.delivery.id):
        by_endpoint.setdefault(c.delivery.endpoint_id, []).append(c.delivery.id)
    await store.pause_endpoint(org, paused.id, "manual", T0 + 2)
    retry = DeliveryStatus.PENDING
    da, db, dp = by_endpoint[a.id], by_endpoint[b.id], by_endpoint[paused.id]
    answers: list[Any] = []
    answers.append(
        await store.record_outcomes(
            "w",
            [
                # a: fail, succeed, fail (the streak counts from the success)
                outcome(da[0], a.id, retry, success=False, at=T0 + 3, next_attempt_at=T0 + 60),
                outcome(da[1], a.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 3, code=200),
                outcome(da[2], a.id, retry, success=False, at=T0 + 3, next_attempt_at=T0 + 60),
                # the same delivery twice: the first counts
                outcome(da[2], a.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 3),
                # b: failures only, one terminal
                outcome(db[0], b.id, retry, success=False, at=T0 + 3, next_attempt_at=T0 + 90),
                outcome(db[1], b.id, DeliveryStatus.FAILED, success=False, at=T0 + 3, code=500),
                # paused meanwhile: a retry is held
                outcome(dp[0], paused.id, retry, success=False, at=T0 + 3, next_attempt_at=T0 + 9),
                # not leased by this worker (never claimed by "w")
                outcome(ids("dlv-unknown"), a.id, retry, success=False, at=T0 + 3),
            ],
            T0 + 4,
        )
    )
    # a lease lost to another worker: dropped with its attempt
    claims = await store.claim_due("w2", T0 + 100, 30.0, 100)
    lost = [c.delivery.id for c in claims if c.delivery.id == da[0]]
    answers.append(
        await store.record_outcomes(
            "w",
            [outcome(i, a.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 101) for i in lost],
            T0 + 102,
        )
    )
    answers.append(await store.record_outcomes("w", [], T0 + 103))
    answers.append(
        await store.record_outcomes(
            "w2",
            [
                outcome(
                    c.delivery.id,
                    c.delivery.endpoint_id,
                    DeliveryStatus.SUCCEEDED,
                    success=True,
                    at=T0 + 104,
                    number=2,
                )
                for c in claims
            ],
            T0 + 105,
        )
    )
    return answers


async def ordered(store: Store, ids: Callable[[str], str]) -> list[Any]:
    """Issue 25 through both paths: numbering, previous events, queueing within a batch and
    behind what is stored, skipped deliveries left out of a subject's chain, and the next
    delivery of a subject made due when the one in front settles (for good or not)."""
    org = await make_org(store, ids("org"))
    by_subject = endpoint(org, id=ids("ep"), ordering="subject")
    unordered = endpoint(org, id=ids("ep"))
    for ep in (by_subject, unordered):
        await store.create_endpoint(ep)

    def planned(n: int, subject: str | None, skip: bool = False) -> PublishItem:
        ev = event(org, id=ids("evt"), created_at=T0 + n, subject=subject)
        status = DeliveryStatus.SKIPPED if skip else DeliveryStatus.PENDING
        ds = [pending(ep.id, id=ids("dlv"), status=status) for ep in (by_subject, unordered)]
        return item(ev, ds)

    answers: list[Any] = []
    answers.append(
        await store.publish(
            [planned(1, "A"), planned(2, "A"), planned(3, "B"), planned(4, None)], now=T0 + 1
        )
    )
    answers.append(await store.publish([planned(5, "A", skip=True), planned(6, "A")], now=T0 + 2))
    claims = sorted(await store.claim_due("w", T0 + 3, 30.0, 100), key=lambda c: c.delivery.id)
    answers.append([(c.delivery.id, c.delivery.sequence, c.delivery.previous_event_id)
                    for c in claims])  # fmt: skip
    heads = [c for c in claims if c.delivery.endpoint_id == by_subject.id]
    answers.append(
        await store.record_outcomes(
            "w",
            [
                outcome(
                    heads[0].delivery.id,
                    by_subject.id,
                    DeliveryStatus.FAILED,
                    success=False,
                    at=T0 + 4,
                    code=500,
                ),
                outcome(
                    heads[1].delivery.id,
                    by_subject.id,
                    DeliveryStatus.PENDING,
                    success=False,
                    at=T0 + 4,
                    next_attempt_at=T0 + 60,
                ),
            ],
            T0 + 5,
        )
    )
    answers.append(sorted(c.delivery.id for c in await store.claim_due("w", T0 + 6, 30.0, 100)))
    return answers


def _ids() -> Callable[[str], str]:
    """Ids numbered in the order asked, so both runs of a case make the same ones."""
    numbers = itertools.count()
    return lambda prefix: f"{prefix}_{next(numbers)}"


def _without_seq(answer: Any) -> Any:
    if isinstance(answer, list):
        return [_without_seq(a) for a in answer]
    if isinstance(answer, PublishResult):
        return dataclasses.replace(answer, event=dataclasses.replace(answer.event, seq=0))
    return answer


async def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for table in TABLES:
            rows = [
                {k: v for k, v in dict(r).items() if k not in SEQUENCES}
                for r in await conn.fetch(f"SELECT * FROM {table}")
            ]
            found[table] = sorted(rows, key=repr)
        return found
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "case", [publishes, outcomes, ordered], ids=["publish", "record_outcomes", "ordered"]
)
async def test_the_fast_path_does_what_the_plain_path_does(
    case: Case, fresh_database_url_factory: Callable[..., str]
) -> None:
    results: dict[bool, tuple[Any, dict[str, list[dict[str, Any]]]]] = {}
    for fast in (True, False):
        url = fresh_database_url_factory("postgres")
        store = Store(PostgresConnector(url), fast_paths=fast)
        await store.connect()
        try:
            answers = await case(store, _ids())
        finally:
            await store.close()
        results[fast] = _without_seq(answers), await _rows(url)
    (fast_answers, fast_rows), (plain_answers, plain_rows) = results[True], results[False]
    assert fast_answers == plain_answers
    for table in TABLES:
        assert fast_rows[table] == plain_rows[table], table
    assert fast_rows["deliveries"] and fast_answers
