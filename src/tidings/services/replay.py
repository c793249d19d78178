"""Replay (contract section 7): one delivery, or an endpoint's deliveries of a time window.
Organization keys; a foreign or unknown id is a 404.

- A replay starts a new attempt series of the same delivery (same event, same endpoint, so the
  body carries the same event id and receivers deduplicate); it is signed afresh at send time.
- An erased event (issue 22 section 4) is never sent again: replaying one of its deliveries
  answers 409 `event_erased`, and a window's replay leaves its deliveries out.
- Replaying to a paused, disabled or deleted endpoint answers 409 (nothing would be sent);
  resume the endpoint first. A skipped delivery has nothing to send (409).
- A window's statuses are any of pending, succeeded, failed, held (default failed).
- `missing: true` (bulk only) also sends the events of the window that the endpoint subscribes
  to now but never received, planned with the same rules as publishing
  (`subscriptions.plan_deliveries`): events with no delivery to it (published before it
  subscribed, or before it existed) get one; deliveries recorded as `skipped` (no accepted
  schemaVersion then) are revived when a version the endpoint accepts now is reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tidings.auth import Actor, require_organization
from tidings.errors import ConflictError, Issues, NotFoundError, ValidationFailed
from tidings.ids import new_id
from tidings.models import Delivery, DeliveryStatus, Endpoint, EndpointStatus, NewDelivery
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.store.base import DeliveryFilter
from tidings.subscriptions import plan_deliveries, to_type_filter

MISSING_BATCH = 500
REPLAYABLE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.FAILED,
    DeliveryStatus.HELD,
)


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """The deliveries of an endpoint created in [since, until) whose status is `status` (one
    name or a list; None: failed); with `missing`, also the window's events the endpoint
    subscribes to now but never received."""

    since: float
    until: float | None = None
    status: str | Sequence[str] | None = None
    missing: bool = False


@dataclass(frozen=True, slots=True)
class ReplayCounts:
    replayed: int  # every delivery now on its way (the missing ones included)
    missing: int  # of those, the ones the endpoint never received
    skipped: int  # newly created but recorded skipped: no accepted schemaVersion reachable


async def replayable_endpoint(deps: Deps, organization_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await deps.store.get_endpoint(organization_id, endpoint_id, include_deleted=True)
    if endpoint is None:
        raise NotFoundError(f"no endpoint {endpoint_id}")
    if endpoint.deleted_at is not None:
        raise ConflictError(
            f"endpoint {endpoint_id} is deleted: nothing can be replayed to it",
            code="endpoint_deleted",
            details={"endpointId": endpoint_id, "status": "deleted"},
        )
    if endpoint.status != EndpointStatus.ACTIVE:
        raise ConflictError(
            f"endpoint {endpoint_id} is {endpoint.status}: resume it "
            f"(POST /v1/endpoints/{endpoint_id}/resume) before replaying",
            code=f"endpoint_{endpoint.status}",
            details={
                "endpointId": endpoint_id,
                "status": str(endpoint.status),
                "pauseReason": endpoint.pause_reason,
            },
        )
    return endpoint


async def create_missing(
    deps: Deps,
    endpoint: Endpoint,
    *,
    since: float,
    until: float | None,
    now: float,
) -> tuple[int, int]:
    """Deliveries for the window's events the endpoint wants now and never got.
    Answers (sendable deliveries created, skipped deliveries recorded)."""
    types = to_type_filter(endpoint.event_types)
    sendable = skipped = 0
    # events of the window the endpoint does not want stay without delivery and come back in
    # every page: remember them and ask for that many more
    unwanted: set[str] = set()
    while True:
        limit = len(unwanted) + MISSING_BATCH
        events = await deps.store.events_without_delivery(
            endpoint.organization_id,
            endpoint.id,
            since=since,
            until=until,
            types=types,
            limit=limit,
        )
        to_send: list[tuple[str, NewDelivery]] = []
        to_skip: list[tuple[str, NewDelivery]] = []
        for event in events:
            if event.id in unwanted:
                continue
            planned = plan_deliveries(event, [endpoint], deps.catalog, lambda p: new_id(p, now))
            if not planned:
                unwanted.add(event.id)
                continue
            target = to_skip if planned[0].status == DeliveryStatus.SKIPPED else to_send
            target.append((event.id, planned[0]))
        sendable += await deps.store.add_deliveries(endpoint.organization_id, to_send, now)
        skipped += await deps.store.add_deliveries(endpoint.organization_id, to_skip, now)
        if len(events) < limit:
            return sendable, skipped


async def revive_skipped(
    deps: Deps,
    endpoint: Endpoint,
    *,
    since: float,
    until: float | None,
    now: float,
) -> int:
    """Skipped deliveries of the endpoint created in the window that it can receive now (its
    accepted versions changed). Answers how many were revived."""
    flt = DeliveryFilter(
        endpoint_id=endpoint.id,
        status=DeliveryStatus.SKIPPED,
        created_after=since,
        created_before=until,
    )
    revived = 0
    cursor: str | None = None
    while True:
        page = await deps.store.list_deliveries(
            endpoint.organization_id, flt, limit=MISSING_BATCH, cursor=cursor
        )
        revivals: list[tuple[str, int]] = []
        events = await deps.store.get_events(
            endpoint.organization_id, [d.event_id for d in page.items]
        )
        for delivery in page.items:
            event = events.get(delivery.event_id)
            if event is None or event.erased_at is not None:  # erased: nothing to send
                continue
            planned = plan_deliveries(event, [endpoint], deps.catalog, lambda p: new_id(p, now))
            if planned and planned[0].schema_version is not None:
                revivals.append((delivery.id, planned[0].schema_version))
        revived += await deps.store.revive_skipped_deliveries(
            endpoint.organization_id, endpoint.id, revivals, now
        )
        cursor = page.next_cursor
        if cursor is None:
            return revived


def _statuses(value: str | Sequence[str] | None) -> list[DeliveryStatus]:
    if value is None:
        return [DeliveryStatus.FAILED]
    given = (
        [("$.status", value)]
        if isinstance(value, str)
        else [(f"$.status[{i}]", v) for i, v in enumerate(value)]
    )
    if not given:
        raise ValidationFailed.at("$.status", "must not be empty")
    names = ", ".join(str(s) for s in REPLAYABLE)
    issues = Issues()
    statuses: list[DeliveryStatus] = []
    for path, name in given:
        if name == DeliveryStatus.SKIPPED:
            issues.add(path, "skipped deliveries cannot be replayed (nothing to send)")
        elif name not in REPLAYABLE:
            issues.add(path, f"unknown status {name!r} (one of {names})")
        elif DeliveryStatus(name) not in statuses:
            statuses.append(DeliveryStatus(name))
    issues.raise_if_any()
    return statuses


async def replay_endpoint(
    deps: Deps, actor: Actor, endpoint_id: str, window: ReplayWindow
) -> ReplayCounts:
    """Each matching delivery starts a new attempt series with the same event."""
    organization_id = require_organization(actor)
    since, until = window.since, window.until
    if until is not None and until <= since:
        raise ValidationFailed.at("$.until", "must be after since")
    statuses = _statuses(window.status)
    endpoint = await replayable_endpoint(deps, organization_id, endpoint_id)
    now = deps.clock()
    asked = {
        "since": since,
        "until": until,
        "status": [str(s) for s in statuses],
        "missing": bool(window.missing),
    }
    entry = audit.entry(deps, actor, "endpoint.replay", endpoint_id, asked, now=now)
    replayed = await deps.store.replay_endpoint_deliveries(
        organization_id,
        endpoint_id,
        since=since,
        until=until,
        statuses=statuses,
        now=now,
        audit=entry,
    )
    missing = skipped = 0
    if window.missing:
        missing = await revive_skipped(deps, endpoint, since=since, until=until, now=now)
        created, skipped = await create_missing(deps, endpoint, since=since, until=until, now=now)
        missing += created
        # the missing ones are made in batches (transactions of their own): counted after
        await audit.record(
            deps,
            actor,
            "endpoint.replay_missing",
            endpoint_id,
            {"since": since, "until": until, "sent": missing, "skipped": skipped},
        )
    return ReplayCounts(replayed=replayed + missing, missing=missing, skipped=skipped)


PREVIEW_MISSING_CAP = 5_000  # events a preview plans at most; beyond, it says "at least"


@dataclass(frozen=True, slots=True)
class ReplayPreview:
    """What `replay_endpoint` with the same window would send now (it changes nothing)."""

    deliveries: int  # deliveries of the window in the statuses asked
    missing: int  # with `missing`: events never received, and skipped ones now sendable
    missing_at_least: bool  # the preview stopped counting missing ones at PREVIEW_MISSING_CAP

    @property
    def total(self) -> int:
        return self.deliveries + self.missing


async def preview_replay_endpoint(
    deps: Deps, actor: Actor, endpoint_id: str, window: ReplayWindow
) -> ReplayPreview:
    """`replay_endpoint`'s checks (the same 422 and 409 answers) and its counts, planned with
    the same rules, without writing anything."""
    organization_id = require_organization(actor)
    since, until = window.since, window.until
    if until is not None and until <= since:
        raise ValidationFailed.at("$.until", "must be after since")
    statuses = _statuses(window.status)
    endpoint = await replayable_endpoint(deps, organization_id, endpoint_id)
    count = await deps.store.count_replay_window(
        organization_id, endpoint_id, since=since, until=until, statuses=statuses
    )
    if not window.missing:
        return ReplayPreview(count, 0, False)
    now = deps.clock()
    missing = 0
    events = await deps.store.events_without_delivery(
        organization_id,
        endpoint_id,
        since=since,
        until=until,
        types=to_type_filter(endpoint.event_types),
        limit=PREVIEW_MISSING_CAP + 1,
    )
    for event in events[:PREVIEW_MISSING_CAP]:
        planned = plan_deliveries(event, [endpoint], deps.catalog, lambda p: new_id(p, now))
        if planned and planned[0].status != DeliveryStatus.SKIPPED:
            missing += 1
    at_least = len(events) > PREVIEW_MISSING_CAP
    flt = DeliveryFilter(
        endpoint_id=endpoint.id,
        status=DeliveryStatus.SKIPPED,
        created_after=since,
        created_before=until,
    )
    page = await deps.store.list_deliveries(organization_id, flt, limit=MISSING_BATCH, cursor=None)
    found = await deps.store.get_events(organization_id, [d.event_id for d in page.items])
    for delivery in page.items:
        skipped_event = found.get(delivery.event_id)
        if skipped_event is None or skipped_event.erased_at is not None:
            continue
        planned = plan_deliveries(skipped_event, [endpoint], deps.catalog, lambda p: new_id(p, now))
        if planned and planned[0].schema_version is not None:
            missing += 1
    return ReplayPreview(count, missing, at_least or page.next_cursor is not None)


async def replay_delivery(deps: Deps, actor: Actor, delivery_id: str) -> Delivery:
    """A new attempt series for the same event and endpoint (same event id, signed afresh)."""
    organization_id = require_organization(actor)
    delivery = await deps.store.get_delivery(organization_id, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    event = await deps.store.get_event(organization_id, delivery.event_id)
    if event is not None and event.erased_at is not None:
        raise ConflictError(
            f"delivery {delivery_id} is of event {event.id}, whose data was erased: there is "
            "nothing to send",
            code="event_erased",
            details={"eventId": event.id},
        )
    if delivery.status == DeliveryStatus.SKIPPED:
        raise ConflictError(
            f"delivery {delivery_id} was skipped ({delivery.skip_reason}): there is nothing to "
            "send; change the endpoint's acceptedSchemaVersions and replay its endpoint with "
            "missing: true",
            code="delivery_skipped",
        )
    await replayable_endpoint(deps, organization_id, delivery.endpoint_id)
    now = deps.clock()
    entry = audit.entry(deps, actor, "delivery.replay", delivery_id, {"count": 1}, now=now)
    replayed = await deps.store.replay_delivery(organization_id, delivery_id, now, entry)
    if replayed is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    return replayed
