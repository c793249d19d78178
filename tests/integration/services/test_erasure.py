"""Erasure of personal data (issue 22 section 4) through the service layer, on both backends: an
erased event keeps its skeleton (ids, type, times, subject, deliveries and attempts with their
outcomes) and no copy of its data remains anywhere in the database (a dump of it, and on SQLite
the database and write-ahead-log files byte for byte): not the event's data, not a receiver's
answer, not the entitlement details; what was still to be sent is not sent, it cannot be
replayed or published again (409 event_erased), the feed's ETag changes, and the erasure is an
audit entry. A subject's events are erased in one organization or in all; only a platform admin
key may erase."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services.conftest import World
from tests.integration.store.test_secrets_at_rest import dump
from tidings.auth import Actor
from tidings.errors import ConflictError, Forbidden, NotFoundError
from tidings.models import Attempt, AttemptOutcome, DeliveryStatus, KeyScope
from tidings.projections import ENTITLEMENT
from tidings.services import audit, deliveries, endpoints, erasure, events, replay
from tidings.services.erasure import Erased

MARKER = "Erika Mustermann born 1980-02-03"
ANSWER = "receiver says: got Erika Mustermann born 1980-02-03"


def envelope(org: Actor, subject: str, *, event_id: str, marker: str = MARKER) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "onboarding.entitlementFailed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": org.organization_id,
        "subject": subject,
        "attributes": {
            "owner_id": subject,
            "owner_type": "person",
            "external_id": f"ext-{subject}",
            "entitlement_trigger_id": "trg-1",
            "entitlement_id": f"ent-{event_id}",
        },
        "data": {"code": "FL0001", "description": "IDV risk", "name": marker},
    }


def files_of(database_url: str) -> bytes:
    """SQLite: the database file and its write-ahead log, as they are on disk."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def _publish(world: World, body: dict[str, Any]) -> str:
    return (await world.deps.publisher.publish(body)).event.id


async def test_an_erased_event_keeps_its_skeleton_and_no_copy_of_its_data(
    world: World, database_url: str
) -> None:
    org = await world.org()
    org_id = org.organization_id
    assert org_id is not None
    first = await endpoints.create_endpoint(
        world.deps, org, world.endpoint_input(event_types=["onboarding.*"])
    )
    second = await endpoints.create_endpoint(
        world.deps, org, world.endpoint_input(event_types=["onboarding.*"])
    )
    event_id = await _publish(world, envelope(org, "owner-42", event_id="evt-erase-1"))
    kept_id = await _publish(world, envelope(org, "owner-7", event_id="evt-kept", marker="Max"))
    store = world.deps.store
    now = world.clock()
    claimed = await store.claim_due("w1", now, 30.0, 10)
    sent = next(c for c in claimed if c.event.id == event_id and c.delivery.endpoint_id == first.id)
    in_flight = next(
        c for c in claimed if c.event.id == event_id and c.delivery.endpoint_id == second.id
    )

    def answered(delivery_id: str, endpoint_id: str) -> AttemptOutcome:
        attempt = Attempt(delivery_id, 1, now, 12.0, 200, None, ANSWER)
        return AttemptOutcome(delivery_id, endpoint_id, attempt, DeliveryStatus.SUCCEEDED,
                              None, True, 200)  # fmt: skip

    await store.record_outcomes("w1", [answered(sent.delivery.id, first.id)], now)
    assert MARKER in dump(database_url)

    world.clock.advance(60)
    done = await erasure.erase_event(world.deps, world.platform, org_id, event_id)
    assert done.counts.as_json() == {
        "events": 1,
        "deliveriesStopped": 1,  # the one still in flight
        "responsesCleared": 1,
        "projections": 1,  # the entitlement's details
    }
    assert done.organizations == (org_id,)

    # no copy of the data anywhere; the other event's data is still there
    dumped = dump(database_url)
    assert MARKER not in dumped and "receiver says" not in dumped
    assert '"Max"' in dumped or '"name": "Max"' in dumped or "Max" in dumped
    if database_url.startswith("sqlite"):
        raw = files_of(database_url)
        assert MARKER.encode() not in raw and b"receiver says" not in raw

    # the skeleton stays
    seen = await deliveries.get_event(world.deps, org, event_id)
    assert seen.event.data is None and seen.event.erased_at == world.clock()
    assert seen.event.type == "onboarding.entitlementFailed" and seen.event.subject == "owner-42"
    by_endpoint = {d.endpoint_id: d for d in seen.deliveries}
    assert by_endpoint[first.id].status == DeliveryStatus.SUCCEEDED
    assert by_endpoint[second.id].status == DeliveryStatus.SKIPPED
    assert by_endpoint[second.id].skip_reason == "erased"
    (attempt,) = await store.list_attempts(org_id, sent.delivery.id)
    assert attempt.status_code == 200 and attempt.response_excerpt is None
    state = await store.get_projection(org_id, ENTITLEMENT, "ent-evt-erase-1")
    assert state is not None and state.state["status"] == "failed"
    assert state.state["details"] is None and state.state["ownerId"] == "owner-42"
    kept = await store.get_event(org_id, kept_id)
    assert kept is not None and kept.erased_at is None and kept.data["name"] == "Max"  # type: ignore[index]

    # the worker that held the other delivery comes back late: its outcome is dropped
    await store.record_outcomes("w1", [answered(in_flight.delivery.id, second.id)], world.clock())
    assert await store.list_attempts(org_id, in_flight.delivery.id) == []

    # never sent again, never published again under its id
    with pytest.raises(ConflictError) as refused:
        await replay.replay_delivery(world.deps, org, sent.delivery.id)
    assert refused.value.code == "event_erased"
    window = replay.ReplayWindow(since=0.0, status=["succeeded", "failed", "pending"])
    counts = await replay.replay_endpoint(world.deps, org, first.id, window)
    assert counts.replayed == 1  # the kept event's delivery only
    preview = await replay.preview_replay_endpoint(
        world.deps, org, second.id, replace(window, missing=True)
    )
    assert preview.missing == 0
    with pytest.raises(ConflictError) as again:
        await world.deps.publisher.publish(envelope(org, "owner-42", event_id=event_id))
    assert again.value.code == "event_erased"

    # on record, and erasing again changes nothing
    (entry,) = (await audit.list_entries(world.deps, org, action="event.erase", limit=5,
                                         cursor=None)).items  # fmt: skip
    assert entry.target_id == event_id and entry.changes["events"] == 1
    assert entry.actor_key_id == world.platform.key_id and entry.organization_id == org_id
    repeat = await erasure.erase_event(world.deps, world.platform, org_id, event_id)
    assert repeat == Erased(repeat.counts, seen.event.erased_at or 0.0, ())
    assert repeat.counts.events == 0


async def test_the_feed_changes_when_an_event_in_it_is_erased(world: World) -> None:
    org = await world.org()
    assert org.organization_id is not None
    event_id = await _publish(world, envelope(org, "owner-1", event_id="evt-feed"))
    page = events.feed(org, after=None, types=None, limit=50)
    before = await events.feed_version(world.deps, page)
    await erasure.erase_event(world.deps, world.platform, org.organization_id, event_id)
    assert await events.feed_version(world.deps, page) != before
    (shown,) = (await events.feed_page(world.deps, page)).items
    assert shown.data is None and shown.erased_at is not None


async def test_a_subject_is_erased_in_one_organization_or_in_all(world: World) -> None:
    acme, globex = await world.org("acme"), await world.org("globex")
    assert acme.organization_id is not None and globex.organization_id is not None
    for n, org in enumerate([acme, acme, globex]):
        await _publish(world, envelope(org, "owner-42", event_id=f"evt-s{n}"))
    await _publish(world, envelope(acme, "owner-9", event_id="evt-other", marker="Someone"))

    only_acme = await erasure.erase_subject(world.deps, world.platform, "owner-42",
                                            acme.organization_id)  # fmt: skip
    assert only_acme.counts.events == 2 and only_acme.organizations == (acme.organization_id,)
    left = await world.deps.store.get_event(globex.organization_id, "evt-s2")
    assert left is not None and left.erased_at is None
    everywhere = await erasure.erase_subject(world.deps, world.platform, "owner-42")
    assert everywhere.counts.events == 1 and everywhere.organizations == (globex.organization_id,)
    other = await world.deps.store.get_event(acme.organization_id, "evt-other")
    assert other is not None and other.erased_at is None
    nothing = await erasure.erase_subject(world.deps, world.platform, "owner-42")
    assert nothing.counts.events == 0 and nothing.organizations == ()
    entries = (await audit.list_entries(world.deps, world.platform, action="subject.erase",
                                        limit=50, cursor=None)).items  # fmt: skip
    assert [(e.organization_id, e.changes["events"]) for e in entries] == [
        (acme.organization_id, 2),
        (globex.organization_id, 1),
        (None, 0),  # nothing to erase: still on record
    ]
    assert {e.target_id for e in entries} == {"owner-42"}


async def test_only_a_platform_admin_key_erases(world: World) -> None:
    org = await world.org()
    assert org.organization_id is not None
    event_id = await _publish(world, envelope(org, "owner-1", event_id="evt-keys"))
    publisher = replace(world.platform, scope=KeyScope.PUBLISH)
    for actor in (org, publisher):
        with pytest.raises(Forbidden):
            await erasure.erase_event(world.deps, actor, org.organization_id, event_id)
        with pytest.raises(Forbidden):
            await erasure.erase_subject(world.deps, actor, "owner-1")
    with pytest.raises(NotFoundError):
        await erasure.erase_event(world.deps, world.platform, org.organization_id, "evt-none")
    with pytest.raises(NotFoundError):
        await erasure.erase_event(world.deps, world.platform, "no-such-org", event_id)
    with pytest.raises(NotFoundError):
        await erasure.erase_subject(world.deps, world.platform, "owner-1", "no-such-org")
