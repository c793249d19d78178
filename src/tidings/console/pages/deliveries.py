"""Delivery history: the organization's deliveries, newest first, keyset-paginated (the store's
cursor), filterable by endpoint, event type, status and creation time; one delivery with the
request tidings sends for it (body as sent, headers) and every attempt; replay one.

Every read and the replay are `services.deliveries` / `services.replay` operations with the
viewer's actor: the API's rules (scoping, a foreign id is a 404, 409 for a paused endpoint)
hold because they are the same code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors, time_field
from tidings.console.templating import flash, render
from tidings.console.viewer import Change, OrgId
from tidings.errors import BadRequest, ConflictError, Issues, ValidationFailed
from tidings.models import DeliveryStatus
from tidings.services import deliveries, replay
from tidings.services.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.subscriptions import to_type_filter, validate_pattern

router = APIRouter()

LIST_PATH = "/console/deliveries"
DeliveryId = Annotated[str, Path(min_length=1, max_length=200)]
FILTER_FIELDS = ("endpoint", "type", "status", "since", "until")
STATUS_OPTIONS = [("", "any status")] + [(str(s), str(s)) for s in DeliveryStatus]
EXCERPT_SHOWN = 2_000


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    """The filter form as given in the address (kept to show it again)."""

    endpoint: str = ""
    type: str = ""
    status: str = ""
    since: str = ""
    until: str = ""

    def as_params(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FILTER_FIELDS}

    def read(self, now: float) -> deliveries.DeliveryFilter:
        """The service's filter; ValidationFailed naming the form's fields otherwise."""
        issues = Issues()
        status: DeliveryStatus | None = None
        if self.status:
            try:
                status = DeliveryStatus(self.status)
            except ValueError:
                issues.add("$.status", f"unknown status {self.status!r}")
        patterns = [p.strip() for p in self.type.split(",") if p.strip()]
        for pattern in patterns:
            problem = validate_pattern(pattern)
            if problem is not None:
                issues.add("$.type", f"{pattern!r}: {problem}")
        since = time_field(self.since, "$.since", issues, now)
        until = time_field(self.until, "$.until", issues, now)
        if since is not None and until is not None and until <= since:
            issues.add("$.until", "must be after since")
        issues.raise_if_any()
        return deliveries.DeliveryFilter(
            endpoint_id=self.endpoint.strip() or None,
            status=status,
            created_after=since,
            created_before=until,
            event_types=to_type_filter(patterns) if patterns else None,
        )


@router.get("/deliveries", include_in_schema=False)
async def deliveries_list(
    request: Request,
    organization_id: OrgId,
    endpoint: Annotated[str, Query(max_length=200)] = "",
    type: Annotated[str, Query(max_length=500)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    context = console_context(request)
    viewer = request.state.viewer
    filters = HistoryFilters(endpoint, type, status, since, until)
    errors = FormErrors()
    items: list[Any] = []
    events: dict[str, Any] = {}
    next_cursor: str | None = None
    try:
        flt = filters.read(context.deps.clock())
        page = await deliveries.list_deliveries(
            context.deps, viewer.actor, flt, limit=limit, cursor=cursor
        )
        items, next_cursor = page.items, page.next_cursor
        events = await deliveries.events_of(context.deps, viewer.actor, [d.event_id for d in items])
    except ValidationFailed as exc:
        if any(str(i.get("path", "")).startswith("query.cursor") for i in _details(exc)):
            raise BadRequest("This page address has a cursor the console did not make.") from exc
        errors = field_errors(exc, FILTER_FIELDS)
    params = {**filters.as_params(), "limit": limit if limit != DEFAULT_LIMIT else ""}
    return render(
        request,
        "pages/deliveries.html",
        {
            "title": "Deliveries",
            "section": "deliveries",
            "filters": filters,
            "errors": errors,
            "status_options": STATUS_OPTIONS,
            "deliveries": items,
            "events": events,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "params": params,
        },
        status_code=422 if errors else 200,
    )


def _details(exc: ValidationFailed) -> list[dict[str, Any]]:
    return [d for d in exc.details if isinstance(d, dict)] if isinstance(exc.details, list) else []


def _pretty_json(text: str | None) -> str | None:
    """The body indented for reading (it is sent compact); as it is when it is not JSON."""
    if text is None:
        return None
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


async def _delivery_page(
    request: Request, delivery_id: str, problem: str | None = None, status_code: int = 200
) -> Response:
    viewer = request.state.viewer
    detail = await deliveries.delivery_detail(
        console_context(request).deps, viewer.actor, delivery_id
    )
    series = sorted({a.series for a in detail.attempts}, reverse=True)
    return render(
        request,
        "pages/delivery.html",
        {
            "title": f"Delivery {detail.delivery.id}",
            "section": "deliveries",
            "d": detail.delivery,
            "attempts": detail.attempts,
            "series": series,
            "event": detail.event,
            "endpoint": detail.endpoint,
            "sent": detail.request,
            "body_pretty": _pretty_json(detail.request.body),
            "excerpt_shown": EXCERPT_SHOWN,
            "problem": problem,
            "replayable": detail.delivery.status != DeliveryStatus.SKIPPED,
        },
        status_code=status_code,
    )


@router.get("/deliveries/{delivery_id}", include_in_schema=False)
async def delivery_page(
    request: Request, organization_id: OrgId, delivery_id: DeliveryId
) -> Response:
    return await _delivery_page(request, delivery_id)


@router.post("/deliveries/{delivery_id}/replay", include_in_schema=False)
async def replay_one(
    request: Request, organization_id: OrgId, delivery_id: DeliveryId, viewer: Change
) -> Response:
    try:
        await replay.replay_delivery(console_context(request).deps, viewer.actor, delivery_id)
    except ConflictError as exc:  # a paused endpoint, a skipped delivery: said on the page
        return await _delivery_page(request, delivery_id, exc.message, status_code=409)
    response = RedirectResponse(f"{LIST_PATH}/{delivery_id}", status_code=303)
    return flash(request, response, "replayed")
