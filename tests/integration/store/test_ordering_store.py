"""Issue 25 in the store, on both backends: a delivery skipped at publish (a schema version
the endpoint does not accept, a filter's refusal) is not in its subject's line: it neither
holds the next one back nor is anyone's previous event, and the digest does not count it."""

from __future__ import annotations

from tidings.models import DeliveryStatus
from tidings.store.base import Store

from .helpers import T0, event, item, make_endpoint, make_org, outcome, pending


async def test_a_skipped_delivery_is_not_in_its_subjects_line(store: Store) -> None:
    org = await make_org(store)
    ep = await make_endpoint(store, org, ordering="subject")
    events = [event(org, subject="A", created_at=T0 + n) for n in range(3)]
    skipped = pending(ep.id, status=DeliveryStatus.SKIPPED, skip_reason="schema_version")
    await store.publish(
        [
            item(events[0], [pending(ep.id)]),
            item(events[1], [skipped]),
            item(events[2], [pending(ep.id)]),
        ],
        now=T0,
    )
    ledger = await store.ledger(org, ep.id, after=0, limit=10)
    assert [(e.sequence, e.event_id, e.status) for e in ledger] == [
        (1, events[0].id, DeliveryStatus.PENDING),
        (2, events[1].id, DeliveryStatus.SKIPPED),
        (3, events[2].id, DeliveryStatus.QUEUED),
    ]
    [claimed] = await store.claim_due("w", T0 + 1, 30.0, 10)
    assert claimed.event.id == events[0].id
    await store.record_outcomes(
        "w",
        [outcome(claimed.delivery.id, ep.id, DeliveryStatus.SUCCEEDED, success=True, at=T0 + 1)],
        T0 + 2,
    )
    [third] = await store.claim_due("w", T0 + 3, 30.0, 10)
    assert third.event.id == events[2].id
    assert third.delivery.previous_event_id == events[0].id  # not the skipped one
    assert set(await store.ledger_event_ids(org, ep.id, 1, 3)) == {events[0].id, events[2].id}
    # the next publish links to the last owed event, and the counter went on
    later = event(org, subject="A", created_at=T0 + 9)
    await store.publish([item(later, [pending(ep.id)])], now=T0 + 9)
    assert await store.last_sequence(ep.id) == 4
    [entry] = await store.ledger(org, ep.id, after=3, limit=10)
    assert entry.event_id == later.id and entry.status == DeliveryStatus.QUEUED
