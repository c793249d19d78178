"""Retention: history older than TIDINGS_RETENTION_DAYS is purged by the worker's background
task, in batches, with an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from tidings.clock import FakeClock
from tidings.delivery.retention import purge_once, run_retention
from tidings.models import DeliveryStatus
from tidings.store.base import Store

from ..store.helpers import event, item, outcome, pending
from .helpers import new_endpoint, new_org

pytestmark = pytest.mark.timeout(60)
DAY = 86400.0
SKIPPED = DeliveryStatus.SKIPPED
SKIP_REASON = "schema_version_not_accepted"


async def _publish_at(
    store: Store, org: str, endpoint_id: str, at: float, n: int, status: DeliveryStatus = SKIPPED
) -> list[str]:
    """`n` events created at `at`, each with one delivery of `status`; answers the delivery ids."""
    skipped = status is SKIPPED
    deliveries = [
        pending(
            endpoint_id,
            status=status,
            schema_version=None if skipped else 1,
            skip_reason=SKIP_REASON if skipped else None,
        )
        for _ in range(n)
    ]
    await store.publish([item(event(org, created_at=at), [d]) for d in deliveries], now=at)
    return [d.id for d in deliveries]


async def test_purge_removes_only_history_older_than_the_cutoff(store: Store) -> None:
    clock = FakeClock()
    org = await new_org(store)
    ep = await new_endpoint(store, org, "https://hooks.example.com/x")
    old = await _publish_at(store, org, ep.id, clock() - 31 * DAY, 7)
    recent = await _publish_at(store, org, ep.id, clock() - 29 * DAY, 2)
    deleted = await purge_once(store, clock, 30, batch_size=3, pause_seconds=0)
    assert deleted >= len(old)  # deliveries and their events, in batches of 3
    for delivery_id in old:
        assert await store.get_delivery(org, delivery_id) is None
    for delivery_id in recent:
        assert await store.get_delivery(org, delivery_id) is not None
    assert await purge_once(store, clock, 30) == 0
    assert await purge_once(store, clock, 0) == 0  # retention off keeps everything


async def test_background_task_purges_and_stops(store: Store) -> None:
    clock = FakeClock()
    org = await new_org(store)
    ep = await new_endpoint(store, org, "https://hooks.example.com/x")
    old = await _publish_at(store, org, ep.id, clock() - 40 * DAY, 3)
    stop = asyncio.Event()
    task = asyncio.create_task(run_retention(store, clock, 30, stop, interval_seconds=0.05))

    async def gone() -> None:
        while await store.get_delivery(org, old[-1]) is not None:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(gone(), 10)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_events_and_attempts_past_retention_go_undelivered_ones_stay(store: Store) -> None:
    """With a clock 40 days on: a delivered event (with its attempt) and a skipped one are
    purged whole; an event whose delivery is still held (its endpoint paused for weeks) is
    kept with that delivery, since nothing accepted may vanish undelivered; recent history
    stays."""
    clock = FakeClock()
    org = await new_org(store)
    ep = await new_endpoint(store, org, "https://hooks.example.com/x")
    old_at = clock() - 40 * DAY

    [delivered] = await _publish_at(store, org, ep.id, old_at, 1, DeliveryStatus.PENDING)
    [claim] = await store.claim_due("w1", old_at + 1, 30, 10)
    assert claim.delivery.id == delivered
    done = outcome(
        delivered, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=old_at + 1, code=200
    )
    await store.record_outcomes("w1", [done], old_at + 1)
    assert len(await store.list_attempts(org, delivered)) == 1
    [skipped] = await _publish_at(store, org, ep.id, old_at, 1)
    [held] = await _publish_at(store, org, ep.id, old_at, 1, DeliveryStatus.HELD)
    [recent] = await _publish_at(store, org, ep.id, clock() - 1 * DAY, 1)
    event_of = {}
    for delivery_id in (delivered, skipped, held, recent):
        delivery = await store.get_delivery(org, delivery_id)
        assert delivery is not None
        event_of[delivery_id] = delivery.event_id

    assert await purge_once(store, clock, 30, batch_size=1, pause_seconds=0) > 0

    for delivery_id in (delivered, skipped):
        assert await store.get_delivery(org, delivery_id) is None
        assert await store.get_event(org, event_of[delivery_id]) is None
    assert await store.list_attempts(org, delivered) == []
    for delivery_id in (held, recent):
        assert await store.get_delivery(org, delivery_id) is not None
        assert await store.get_event(org, event_of[delivery_id]) is not None
