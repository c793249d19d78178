"""Replay rules shared by POST /v1/deliveries/{id}/replay and POST /v1/endpoints/{id}/replay.

- A replay starts a new attempt series of the same delivery (same event, same endpoint, so the
  body carries the same event id and receivers deduplicate); it is signed afresh at send time.
- Replaying to a paused, disabled or deleted endpoint answers 409 (nothing would be sent);
  resume the endpoint first. A foreign or unknown id answers 404.
- `missing: true` (bulk only) also sends the events of the window that the endpoint subscribes
  to now but never received, planned with the same rules as publishing
  (`subscriptions.plan_deliveries`): events with no delivery to it (published before it
  subscribed, or before it existed) get one; deliveries recorded as `skipped` (no accepted
  schemaVersion then) are revived when a version the endpoint accepts now is reachable.
"""

from __future__ import annotations

from tidings.api.context import AppContext
from tidings.errors import ConflictError, NotFoundError
from tidings.ids import new_id
from tidings.models import DeliveryStatus, Endpoint, EndpointStatus, NewDelivery
from tidings.store.base import DeliveryFilter
from tidings.subscriptions import plan_deliveries, to_type_filter

MISSING_BATCH = 500


async def replayable_endpoint(ctx: AppContext, organization_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await ctx.store.get_endpoint(organization_id, endpoint_id, include_deleted=True)
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
    ctx: AppContext,
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
        events = await ctx.store.events_without_delivery(
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
            planned = plan_deliveries(event, [endpoint], ctx.catalog, lambda p: new_id(p, now))
            if not planned:
                unwanted.add(event.id)
                continue
            target = to_skip if planned[0].status == DeliveryStatus.SKIPPED else to_send
            target.append((event.id, planned[0]))
        sendable += await ctx.store.add_deliveries(endpoint.organization_id, to_send, now)
        skipped += await ctx.store.add_deliveries(endpoint.organization_id, to_skip, now)
        if len(events) < limit:
            return sendable, skipped


async def revive_skipped(
    ctx: AppContext,
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
        page = await ctx.store.list_deliveries(
            endpoint.organization_id, flt, limit=MISSING_BATCH, cursor=cursor
        )
        revivals: list[tuple[str, int]] = []
        events = await ctx.store.get_events(
            endpoint.organization_id, [d.event_id for d in page.items]
        )
        for delivery in page.items:
            event = events.get(delivery.event_id)
            if event is None:
                continue
            planned = plan_deliveries(event, [endpoint], ctx.catalog, lambda p: new_id(p, now))
            if planned and planned[0].schema_version is not None:
                revivals.append((delivery.id, planned[0].schema_version))
        revived += await ctx.store.revive_skipped_deliveries(
            endpoint.organization_id, endpoint.id, revivals, now
        )
        cursor = page.next_cursor
        if cursor is None:
            return revived


__all__ = ["create_missing", "replayable_endpoint", "revive_skipped"]
