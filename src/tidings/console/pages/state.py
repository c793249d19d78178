"""State an integrator polls, looked up by key: an order's compliance rollup, a dlt owner's
account locks, a dlt entitlement (`services.state.get_state`, what `GET /v1/orders/{id}/
compliance`, `/v1/owners/{id}/locks` and `/v1/entitlements/{id}` answer)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tidings.console.context import console_context
from tidings.console.templating import render
from tidings.console.viewer import OrgId
from tidings.errors import NotFoundError
from tidings.projections import COMPLIANCE, ENTITLEMENT, LOCKS
from tidings.services.state import get_state, state_view

router = APIRouter()

KINDS = (
    (COMPLIANCE, "An order's compliance rollup", "Order id", "GET /v1/orders/{id}/compliance"),
    (LOCKS, "An owner's account locks", "Owner id", "GET /v1/owners/{id}/locks"),
    (ENTITLEMENT, "An entitlement", "Entitlement id", "GET /v1/entitlements/{id}"),
)
KIND_NAMES = {kind for kind, *_ in KINDS}


@router.get("/state", include_in_schema=False)
async def state_page(
    request: Request,
    organization_id: OrgId,
    kind: Annotated[str, Query(max_length=20)] = COMPLIANCE,
    key: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    viewer = request.state.viewer
    kind = kind if kind in KIND_NAMES else COMPLIANCE
    found: str | None = None
    missing: str | None = None
    status_code = 200
    if key.strip():
        try:
            deps = console_context(request).deps
            projection = await get_state(deps, viewer.actor, kind, key.strip())
            shown = state_view(deps, projection)
            found = orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode()
        except NotFoundError:
            missing = "No state for this key yet: no event about it reached this organization."
            status_code = 404
    return render(
        request,
        "pages/state.html",
        {
            "title": "State",
            "section": "state",
            "kinds": KINDS,
            "kind": kind,
            "key": key,
            "found": found,
            "missing": missing,
        },
        status_code=status_code,
    )
