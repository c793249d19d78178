"""Publishing (platform keys), the organization's events feed with ETag, and the catalogs.

`GET /v1/events/{id}` (one event with its deliveries) lives with the delivery history."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from tidings import tracing
from tidings.api.context import AnyKey, Ctx, Limit, OrgKey, PublishKey
from tidings.api.etag import matches, not_modified, strong_etag
from tidings.api.views import event_view
from tidings.config import MAX_BATCH_EVENTS
from tidings.envelope import json_schema as envelope_schema
from tidings.errors import ApiError, BadRequest
from tidings.services import events
from tidings.services.paging import DEFAULT_LIMIT
from tidings.store.base import PublishResult

router = APIRouter(tags=["events"])

_ENVELOPE_DOC = {
    "content": {"application/json": {"schema": envelope_schema()}},
    "required": True,
}


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from exc


@router.post(
    "/v1/events",
    status_code=201,
    summary="publish one event (201 new, 200 idempotent repeat)",
    openapi_extra={"requestBody": _ENVELOPE_DOC},
    response_model=None,
)
async def publish_event(
    request: Request,
    ctx: Ctx,
    actor: PublishKey,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    envelope = await _json_body(request)
    with tracing.caller_context(request.headers):
        result = await events.publish_event(
            ctx.deps, actor, envelope, idempotency_key=idempotency_key
        )
    return Response(
        orjson.dumps(event_view(result.event, events.warnings(ctx.deps, result.event))),
        status_code=201 if result.created else 200,
        media_type="application/json",
    )


def _batch_item(answer: PublishResult | ApiError) -> dict[str, Any]:
    if isinstance(answer, ApiError):
        return answer.to_body()
    return {"id": answer.event.id, "status": "created" if answer.created else "existing"}


@router.post(
    "/v1/events/batch",
    summary=f"publish up to {MAX_BATCH_EVENTS} events; each answered on its own",
    response_model=None,
)
async def publish_batch(request: Request, ctx: Ctx, actor: PublishKey) -> Response:
    envelopes = await _json_body(request)
    with tracing.caller_context(request.headers):
        answers = await events.publish_batch(ctx.deps, actor, envelopes)
    # a Response of its own, as for one event: a returned dict went through FastAPI's
    # jsonable_encoder, which walked the hundred answers again (~2.6 % of a batch in py-spy)
    return Response(
        orjson.dumps({"results": [_batch_item(a) for a in answers]}),
        media_type="application/json",
    )


@router.get(
    "/v1/events",
    summary="the organization's events, oldest first after a cursor; ETag and 304",
    response_model=None,
)
async def list_events(
    request: Request,
    ctx: Ctx,
    actor: OrgKey,
    after: Annotated[str | None, Query(max_length=200, description="nextCursor of a page")] = None,
    types: Annotated[
        str | None, Query(max_length=2000, description="comma-separated patterns, e.g. kyc.*")
    ] = None,
    correlation_id: Annotated[
        str | None,
        Query(
            alias="correlationId",
            max_length=200,
            description="only the events the platform published with this correlationId",
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    feed = events.feed(actor, after=after, types=types, limit=limit, correlation_id=correlation_id)
    etag = strong_etag(*await events.feed_version(ctx.deps, feed))
    if matches(request, etag):
        return not_modified(etag)
    page = await events.feed_page(ctx.deps, feed)
    items = [event_view(e, events.warnings(ctx.deps, e)) for e in page.items]
    body = {"items": items, "nextCursor": page.next_cursor}
    return Response(
        content=orjson.dumps(body), media_type="application/json", headers={"ETag": etag}
    )


@router.get("/v1/event-types", summary="every event type of every catalog", response_model=None)
async def event_types(ctx: Ctx, actor: AnyKey) -> dict[str, Any]:
    return {"items": events.event_types(ctx.deps, actor), "nextCursor": None}


@router.get(
    "/v1/event-types/{type_name}",
    summary="one event type: versions, schemas, examples and the error codes it carries",
    response_model=None,
)
async def event_type(type_name: str, ctx: Ctx, actor: AnyKey) -> dict[str, Any]:
    return events.event_type(ctx.deps, actor, type_name)


@router.get(
    "/v1/error-codes",
    summary="the error-code reference (code, meaning, category, workflows, event types)",
    description="With `type`, the codes that type's failures carry.",
    response_model=None,
)
async def error_codes(
    ctx: Ctx, actor: AnyKey, type_name: Annotated[str | None, Query(alias="type")] = None
) -> dict[str, Any]:
    return {"items": events.error_codes(ctx.deps, actor, type_name), "nextCursor": None}
