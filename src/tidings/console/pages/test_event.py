"""Send a test event to one endpoint (issue 21): pick a type the endpoint receives, start from
the catalog's example, publish it as a real test event (`services.test_events`: source SYSTEM,
attribute `test: true`, this endpoint only, no state changed), then watch the attempt happen:
the delivery's panel is fetched again every second (htmx) until the delivery is settled."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors
from tidings.console.templating import render
from tidings.console.viewer import Change, OrgId
from tidings.errors import ValidationFailed
from tidings.models import DeliveryStatus, Endpoint
from tidings.services import deliveries, endpoints, test_events
from tidings.subscriptions import matches_any

router = APIRouter()

EndpointId = Annotated[str, Path(min_length=1, max_length=100)]
DeliveryId = Annotated[str, Path(min_length=1, max_length=100)]
MAX_DATA_CHARS = 100_000
SETTLED = {DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED}


def _types(request: Request, endpoint: Endpoint) -> list[str]:
    """The catalog types the endpoint subscribes to (meta types aside: tidings sends those)."""
    catalog = console_context(request).deps.catalog
    return [
        name
        for name in catalog.names()
        if matches_any(endpoint.event_types, name) and not name.startswith("webhook.")
    ]


def _form(
    request: Request,
    endpoint: Endpoint,
    type_name: str,
    data: str,
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "pages/test_event.html",
        {
            "title": "Send a test event",
            "section": "endpoints",
            "endpoint": endpoint,
            "types": _types(request, endpoint),
            "type_options": [(t, t) for t in _types(request, endpoint)],
            "type_name": type_name,
            "data": data,
            "errors": errors,
            "sent": None,
        },
        status_code=status_code,
    )


def _example(request: Request, type_name: str) -> str:
    example = test_events.example_data(console_context(request).deps.catalog, type_name)
    return orjson.dumps(example, option=orjson.OPT_INDENT_2).decode()


@router.get("/endpoints/{endpoint_id}/test", include_in_schema=False)
async def test_form(
    request: Request,
    organization_id: OrgId,
    endpoint_id: EndpointId,
    type_name: Annotated[str | None, Query(alias="type", max_length=200)] = None,
) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, request.state.viewer.actor, endpoint_id)
    types = _types(request, endpoint)
    chosen = type_name if type_name in types else (types[0] if types else "")
    data = _example(request, chosen) if chosen else ""
    return _form(request, endpoint, chosen, data, FormErrors())


@router.post("/endpoints/{endpoint_id}/test", include_in_schema=False)
async def send_test(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, viewer.actor, endpoint_id)
    form = await request.form()
    raw_type, raw_data = form.get("type"), form.get("data")
    type_name = raw_type if isinstance(raw_type, str) else ""
    data_text = raw_data[:MAX_DATA_CHARS] if isinstance(raw_data, str) else ""
    try:
        try:
            data = orjson.loads(data_text)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed.at("$.data", f"not JSON: {exc}") from None
        sent = await test_events.send_test_event(deps, viewer.actor, endpoint_id, type_name, data)
    except ValidationFailed as exc:
        errors = field_errors(exc, ("data",))
        return _form(request, endpoint, type_name, data_text, errors, status_code=422)
    return render(
        request,
        "pages/test_event.html",
        {
            "title": "Test event sent",
            "section": "endpoints",
            "endpoint": endpoint,
            "types": _types(request, endpoint),
            "type_options": [(t, t) for t in _types(request, endpoint)],
            "type_name": type_name,
            "data": data_text,
            "errors": FormErrors(),
            "sent": sent,
        },
        status_code=201,
    )


@router.get("/deliveries/{delivery_id}/live", include_in_schema=False)
async def live_attempts(
    request: Request, organization_id: OrgId, delivery_id: DeliveryId
) -> Response:
    """The delivery's status and attempts, for the test page to swap in while it settles."""
    deps = console_context(request).deps
    found = await deliveries.get_delivery(deps, request.state.viewer.actor, delivery_id)
    return render(
        request,
        "components/live_delivery.html",
        {
            "delivery": found.delivery,
            "attempts": found.attempts,
            "settled": found.delivery.status in SETTLED,
        },
    )
