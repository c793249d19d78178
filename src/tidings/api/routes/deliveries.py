"""Delivery history and single replay (contract section 7, organization keys), and one event with
its deliveries. Everything is scoped to the key's organization: a foreign id answers 404 and
lists never contain another organization's rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tidings.api.context import DEFAULT_LIMIT, AppContext, Ctx, Limit, OrgId
from tidings.api.replay import replayable_endpoint
from tidings.api.views import attempt_view, delivery_view, event_view
from tidings.clock import parse_rfc3339
from tidings.errors import ConflictError, NotFoundError, ValidationFailed
from tidings.models import Delivery, DeliveryStatus
from tidings.store.base import DeliveryFilter

router = APIRouter(tags=["deliveries"])

Id = Annotated[str, Path(min_length=1, max_length=200)]
EVENT_DELIVERIES_PAGE = 500


def _bad_query(name: str, message: str) -> ValidationFailed:
    path = f"query.{name}"
    return ValidationFailed(f"{path}: {message}", details=[{"path": path, "message": message}])


def _time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise _bad_query(name, "not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)") from exc


async def _delivery(ctx: AppContext, organization_id: str, delivery_id: str) -> Delivery:
    delivery = await ctx.store.get_delivery(organization_id, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    return delivery


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
    organization_id: OrgId,
    endpointId: Annotated[str | None, Query(max_length=200)] = None,
    eventId: Annotated[str | None, Query(max_length=200)] = None,
    status: DeliveryStatus | None = None,
    since: Annotated[str | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(description="RFC 3339, exclusive")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    flt = DeliveryFilter(
        endpoint_id=endpointId,
        event_id=eventId,
        status=status,
        created_after=_time(since, "since"),
        created_before=_time(until, "until"),
    )
    try:
        page = await ctx.store.list_deliveries(organization_id, flt, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise _bad_query("cursor", "not a cursor this API made") from exc
    return {"items": [delivery_view(d) for d in page.items], "nextCursor": page.next_cursor}


@router.get("/v1/deliveries/{delivery_id}", summary="one delivery with its attempts")
async def get_delivery(delivery_id: Id, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    delivery = await _delivery(ctx, organization_id, delivery_id)
    attempts = await ctx.store.list_attempts(organization_id, delivery_id)
    return {**delivery_view(delivery), "attempts": [attempt_view(a) for a in attempts]}


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
async def replay_delivery(delivery_id: Id, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    delivery = await _delivery(ctx, organization_id, delivery_id)
    if delivery.status == DeliveryStatus.SKIPPED:
        raise ConflictError(
            f"delivery {delivery_id} was skipped ({delivery.skip_reason}): there is nothing to "
            "send; change the endpoint's acceptedSchemaVersions and replay its endpoint with "
            "missing: true",
            code="delivery_skipped",
        )
    await replayable_endpoint(ctx, organization_id, delivery.endpoint_id)
    replayed = await ctx.store.replay_delivery(organization_id, delivery_id, ctx.clock())
    if replayed is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    return delivery_view(replayed)


@router.get(
    "/v1/events/{event_id}",
    tags=["events"],
    summary="one event with its deliveries",
    description="The stored envelope and `deliveries` (every delivery of it, newest first).",
)
async def get_event(event_id: Id, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    event = await ctx.store.get_event(organization_id, event_id)
    if event is None:
        raise NotFoundError(f"no event {event_id}")
    deliveries: list[dict[str, Any]] = []
    cursor: str | None = None
    flt = DeliveryFilter(event_id=event_id)
    while True:
        page = await ctx.store.list_deliveries(
            organization_id, flt, limit=EVENT_DELIVERIES_PAGE, cursor=cursor
        )
        deliveries.extend(delivery_view(d) for d in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return {**event_view(event), "deliveries": deliveries}
