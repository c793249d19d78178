"""Publishing (platform keys), the organization's events feed with ETag, and the catalogs.

`GET /v1/events/{id}` (one event with its deliveries) lives with the delivery history."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from tidings.api.context import DEFAULT_LIMIT, AnyKey, Ctx, Limit, OrgId, PlatformKey
from tidings.api.etag import matches, not_modified, strong_etag
from tidings.api.views import event_view
from tidings.config import MAX_BATCH_EVENTS
from tidings.errors import ApiError, BadRequest, ValidationFailed
from tidings.store.base import TypeFilter
from tidings.subscriptions import to_type_filter, validate_pattern

router = APIRouter(tags=["events"])

_ENVELOPE_DOC = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "schemaVersion", "source", "organizationUuid", "data"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "schemaVersion": {"type": "integer"},
                    "source": {"enum": ["API", "WEB_APP", "SYSTEM"]},
                    "organizationUuid": {"type": "string"},
                    "partnerUuid": {"type": ["string", "null"]},
                    "subject": {"type": ["string", "null"]},
                    "attributes": {"type": "object"},
                    "data": {},
                    "createdAt": {"type": "string", "format": "date-time"},
                },
            }
        }
    },
    "required": True,
}


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from exc


def _bad(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", details=[{"path": path, "message": message}])


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
    principal: PlatformKey,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    envelope = await _json_body(request)
    result = await ctx.publisher.publish(envelope, idempotency_key=idempotency_key)
    return Response(
        orjson.dumps(event_view(result.event)),
        status_code=201 if result.created else 200,
        media_type="application/json",
    )


def _batch_item(answer: Any) -> dict[str, Any]:
    if isinstance(answer, ApiError):
        return answer.to_body()
    return {"id": answer.event.id, "status": "created" if answer.created else "existing"}


@router.post(
    "/v1/events/batch",
    summary=f"publish up to {MAX_BATCH_EVENTS} events; each answered on its own",
    response_model=None,
)
async def publish_batch(request: Request, ctx: Ctx, principal: PlatformKey) -> Response:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise _bad("$.events", "a list of event envelopes is required")
    envelopes = body["events"]
    if not envelopes or len(envelopes) > MAX_BATCH_EVENTS:
        raise _bad("$.events", f"must hold 1 to {MAX_BATCH_EVENTS} events")
    extra = [k for k in body if k != "events"]
    if extra:
        raise _bad(f"$.{extra[0]}", "unknown field")
    answers = await ctx.publisher.publish_batch(envelopes)
    # a Response of its own, as for one event: a returned dict went through FastAPI's
    # jsonable_encoder, which walked the hundred answers again (~2.6 % of a batch in py-spy)
    return Response(
        orjson.dumps({"results": [_batch_item(a) for a in answers]}),
        media_type="application/json",
    )


def _types_filter(types: str | None) -> tuple[TypeFilter, str]:
    if types is None or not types.strip():
        return TypeFilter(), ""
    patterns = sorted({p.strip() for p in types.split(",") if p.strip()})
    for pattern in patterns:
        problem = validate_pattern(pattern)
        if problem is not None:
            raise _bad("query.types", f"{pattern!r}: {problem}")
    return to_type_filter(patterns), ",".join(patterns)


@router.get(
    "/v1/events",
    summary="the organization's events, oldest first after a cursor; ETag and 304",
    response_model=None,
)
async def list_events(
    request: Request,
    ctx: Ctx,
    organization_id: OrgId,
    after: Annotated[str | None, Query(max_length=200, description="nextCursor of a page")] = None,
    types: Annotated[
        str | None, Query(max_length=2000, description="comma-separated patterns, e.g. kyc.*")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    type_filter, types_key = _types_filter(types)
    count, last_seq = await ctx.store.events_page_fingerprint(
        organization_id, after=after, types=type_filter, limit=limit
    )
    etag = strong_etag("events", organization_id, after, types_key, limit, count, last_seq)
    if matches(request, etag):
        return not_modified(etag)
    page = await ctx.store.list_events(organization_id, after=after, types=type_filter, limit=limit)
    body = {"items": [event_view(e) for e in page.items], "nextCursor": page.next_cursor}
    return Response(
        content=orjson.dumps(body), media_type="application/json", headers={"ETag": etag}
    )


@router.get("/v1/event-types", summary="every event type of every catalog", response_model=None)
async def event_types(ctx: Ctx, principal: AnyKey) -> dict[str, Any]:
    return {"items": ctx.catalog.to_json(), "nextCursor": None}
