"""The organization's endpoints: a keyset-paginated table (the store's cursor, oldest first)
with status and health at a glance, and pause / resume from the table (the service layer's
operations, so the API's rules hold: scoping, a foreign id is a 404)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from tidings.console.context import console_context
from tidings.console.templating import flash, render
from tidings.console.viewer import Change, OrgId
from tidings.errors import BadRequest, ValidationFailed
from tidings.services import endpoints
from tidings.services.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter()

LIST_PATH = "/console/endpoints"
EndpointId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/endpoints", include_in_schema=False)
async def endpoints_list(
    request: Request,
    organization_id: OrgId,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    viewer = request.state.viewer
    deps = console_context(request).deps
    try:
        page = await endpoints.list_endpoints(deps, viewer.actor, limit=limit, cursor=cursor)
    except ValidationFailed as exc:  # a cursor the store did not make
        raise BadRequest("This page address has a cursor the console did not make.") from exc
    health = await endpoints.health_of(deps, viewer.actor, page.items)
    return render(
        request,
        "pages/endpoints.html",
        {
            "title": "Endpoints",
            "section": "endpoints",
            "endpoints": page.items,
            "health": health,
            "next_cursor": page.next_cursor,
            "limit": limit,
            "default_limit": DEFAULT_LIMIT,
            "first_page": cursor is None,
        },
    )


async def _back(request: Request, endpoint_id: str) -> str:
    """The list, or the endpoint's own page when the form came from there."""
    back = (await request.form()).get("back")
    return f"{LIST_PATH}/{quote(endpoint_id)}" if back == "endpoint" else LIST_PATH


@router.post("/endpoints/{endpoint_id}/pause", include_in_schema=False)
async def pause(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    await endpoints.pause_endpoint(console_context(request).deps, viewer.actor, endpoint_id)
    to = await _back(request, endpoint_id)
    return flash(request, RedirectResponse(to, status_code=303), "paused")


@router.post("/endpoints/{endpoint_id}/resume", include_in_schema=False)
async def resume(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    resumed = await endpoints.resume_endpoint(
        console_context(request).deps, viewer.actor, endpoint_id
    )
    response = RedirectResponse(await _back(request, endpoint_id), status_code=303)
    return flash(request, response, "resumed", resumed.released)
