"""The organization's events: its feed (oldest first after a cursor, as `GET /v1/events`
pages it, filtered by type patterns), and one event with its envelope and its delivery to each
endpoint (`services.events.feed_page`, `services.deliveries.get_event`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors
from tidings.console.templating import page_url, render
from tidings.console.viewer import OrgId
from tidings.errors import BadRequest, ValidationFailed
from tidings.services import deliveries, events
from tidings.services.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter()

EventId = Annotated[str, Path(min_length=1, max_length=200)]


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@router.get("/events", include_in_schema=False)
async def events_list(
    request: Request,
    organization_id: OrgId,
    types: Annotated[str, Query(max_length=500)] = "",
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    viewer = request.state.viewer
    errors = FormErrors()
    items: list[Any] = []
    next_cursor: str | None = None
    try:
        asked = events.feed(viewer.actor, after=after, types=types, limit=limit)
        page = await events.feed_page(console_context(request).deps, asked)
        items, next_cursor = page.items, page.next_cursor
    except ValidationFailed as exc:
        message = exc.message.split(": ", 1)[-1]
        errors = FormErrors({"types": [message]})
    except ValueError as exc:  # a cursor the store did not make
        raise BadRequest("This page address has a cursor the console did not make.") from exc
    params = {"types": types, "limit": limit if limit != DEFAULT_LIMIT else ""}
    return render(
        request,
        "pages/events.html",
        {
            "title": "Events",
            "section": "events",
            "types": types,
            "errors": errors,
            "events": items,
            "next_url": page_url("/console/events", {**params, "after": next_cursor})
            if next_cursor and len(items) == limit
            else None,
            "newer_url": page_url("/console/events", {**params, "after": next_cursor})
            if next_cursor and len(items) < limit
            else None,
            "first_page": after is None,
            "params": params,
        },
        status_code=422 if errors else 200,
    )


@router.get("/events/{event_id}", include_in_schema=False)
async def event_page(request: Request, organization_id: OrgId, event_id: EventId) -> Response:
    viewer = request.state.viewer
    deps = console_context(request).deps
    found = await deliveries.get_event(deps, viewer.actor, event_id)
    event = found.event
    return render(
        request,
        "pages/event.html",
        {
            "title": f"Event {event.id}",
            "section": "events",
            "event": event,
            "data": _pretty(event.data),
            "attributes": _pretty(event.attributes) if event.attributes else None,
            "deliveries": found.deliveries,
            "warnings": events.warnings(deps, event),
        },
    )
