"""Delivery history and single replay (contract section 7, organization keys), and one event with
its deliveries. Everything is scoped to the key's organization: a foreign id answers 404 and
lists never contain another organization's rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tidings.api.context import Ctx, Limit, OrgKey, Rfc3339
from tidings.api.views import attempt_view, delivery_view, event_view
from tidings.errors import time_at
from tidings.models import DeliveryStatus
from tidings.services import deliveries, events, replay
from tidings.services.paging import DEFAULT_LIMIT
from tidings.store.base import DeliveryFilter

router = APIRouter(tags=["deliveries"])

Id = Annotated[str, Path(min_length=1, max_length=200)]


@router.get(
    "/v1/deliveries",
    summary="delivery history, newest first",
    description=(
        "Filters: `endpointId`, `eventId`, `status` (pending, succeeded, failed, held, skipped), "
        "and a time range on the delivery's creation: `since` (RFC 3339, inclusive) and `until` "
        "(RFC 3339, exclusive). Newest first; `?limit=` (default 50, max 500) and `?cursor=` "
        "(the `nextCursor` of the previous page)."
    ),
)
async def list_deliveries(
    ctx: Ctx,
    actor: OrgKey,
    endpointId: Annotated[str | None, Query(max_length=200)] = None,
    eventId: Annotated[str | None, Query(max_length=200)] = None,
    status: DeliveryStatus | None = None,
    since: Annotated[Rfc3339 | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[Rfc3339 | None, Query(description="RFC 3339, exclusive")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    flt = DeliveryFilter(
        endpoint_id=endpointId,
        event_id=eventId,
        status=status,
        created_after=time_at(since, "query.since"),
        created_before=time_at(until, "query.until"),
    )
    page = await deliveries.list_deliveries(ctx.deps, actor, flt, limit=limit, cursor=cursor)
    return {"items": [delivery_view(d) for d in page.items], "nextCursor": page.next_cursor}


@router.get("/v1/deliveries/{delivery_id}", summary="one delivery with its attempts")
async def get_delivery(delivery_id: Id, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    found = await deliveries.get_delivery(ctx.deps, actor, delivery_id)
    attempts = [attempt_view(a) for a in found.attempts]
    return {**delivery_view(found.delivery), "attempts": attempts}


@router.post(
    "/v1/deliveries/{delivery_id}/replay",
    status_code=202,
    summary="replay one delivery",
    description=(
        "Starts a new attempt series for the same event and endpoint (same event id, signed "
        "afresh). 409 when the endpoint is paused, disabled or deleted, or the delivery was "
        "skipped (no accepted schemaVersion)."
    ),
)
async def replay_delivery(delivery_id: Id, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    return delivery_view(await replay.replay_delivery(ctx.deps, actor, delivery_id))


@router.get(
    "/v1/events/{event_id}",
    tags=["events"],
    summary="one event with its deliveries",
    description="The stored envelope and `deliveries` (every delivery of it, newest first).",
)
async def get_event(event_id: Id, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    found = await deliveries.get_event(ctx.deps, actor, event_id)
    return {
        **event_view(found.event, events.warnings(ctx.deps, found.event)),
        "deliveries": [delivery_view(d) for d in found.deliveries],
    }
