"""Retention: history older than TIDINGS_RETENTION_DAYS is purged by the worker's background
task, in batches, with an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from tidings.clock import FakeClock
from tidings.delivery.retention import purge_once, run_retention
from tidings.ids import new_id
from tidings.models import Attempt, AttemptOutcome, DeliveryStatus, Event, NewDelivery
from tidings.store.base import PublishItem, Store

from .helpers import new_endpoint, new_org

pytestmark = pytest.mark.timeout(60)
DAY = 86400.0


async def _publish_at(store: Store, org: str, endpoint_id: str, at: float, n: int) -> list[str]:
    ids = []
    items = []
    for _ in range(n):
        event = Event(
            id=new_id("evt"),
            organization_id=org,
            type="compliance.status_changed",
            schema_version=1,
            source="WEB_APP",
            created_at=at,
            data={"orderId": "o"},
        )
        delivery = NewDelivery(
            id=new_id("dlv"),
            endpoint_id=endpoint_id,
            status=DeliveryStatus.SKIPPED,
            schema_version=None,
            skip_reason="schema_version_not_accepted",
        )
        ids.append(delivery.id)
        items.append(PublishItem(event, [delivery]))
    await store.publish(items, now=at)
    return ids


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

    async def publish(status: DeliveryStatus, at: float) -> tuple[str, str]:
        event = Event(
            id=new_id("evt"),
            organization_id=org,
            type="compliance.status_changed",
            schema_version=1,
            source="WEB_APP",
            created_at=at,
            data={"orderId": "o"},
        )
        delivery = NewDelivery(
            id=new_id("dlv"),
            endpoint_id=ep.id,
            status=status,
            schema_version=None if status is DeliveryStatus.SKIPPED else 1,
            skip_reason="schema_version_not_accepted" if status is DeliveryStatus.SKIPPED else None,
        )
        await store.publish([PublishItem(event, [delivery])], now=at)
        return event.id, delivery.id

    delivered_event, delivered = await publish(DeliveryStatus.PENDING, old_at)
    [claim] = await store.claim_due("w1", old_at + 1, 30, 10)
    assert claim.delivery.id == delivered
    attempt = Attempt(delivered, 1, old_at + 1, 12.0, 200, None, "ok")
    await store.record_outcomes(
        "w1",
        [
            AttemptOutcome(
                delivery_id=delivered,
                endpoint_id=ep.id,
                attempt=attempt,
                status=DeliveryStatus.SUCCEEDED,
                next_attempt_at=None,
                success=True,
                last_status_code=200,
            )
        ],
        old_at + 1,
    )
    assert len(await store.list_attempts(org, delivered)) == 1
    skipped_event, skipped = await publish(DeliveryStatus.SKIPPED, old_at)
    held_event, held = await publish(DeliveryStatus.HELD, old_at)
    recent_event, recent = await publish(DeliveryStatus.SKIPPED, clock() - 1 * DAY)

    assert await purge_once(store, clock, 30, batch_size=1, pause_seconds=0) > 0

    for event_id, delivery_id in ((delivered_event, delivered), (skipped_event, skipped)):
        assert await store.get_delivery(org, delivery_id) is None
        assert await store.get_event(org, event_id) is None
    assert await store.list_attempts(org, delivered) == []
    for event_id, delivery_id in ((held_event, held), (recent_event, recent)):
        assert await store.get_delivery(org, delivery_id) is not None
        assert await store.get_event(org, event_id) is not None
