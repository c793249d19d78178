"""The event catalog: every type with its description, filterable by catalog and text; one type
with its schema per version made readable (and raw), its examples, and, in an organization's
console, which of its endpoints receive it."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tidings.console.context import ConsoleContext, console_context
from tidings.console.schema_view import schema_tables
from tidings.console.templating import render
from tidings.console.viewer import SignedIn, Viewer
from tidings.errors import NotFoundError
from tidings.models import Endpoint
from tidings.services import endpoints
from tidings.services.paging import MAX_LIMIT
from tidings.subscriptions import matches_any

router = APIRouter()

ENDPOINT_PAGE = MAX_LIMIT
ENDPOINTS_SHOWN = 2_000  # an organization with more is told the list is cut short


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@router.get("/catalog", include_in_schema=False)
async def catalog_list(
    request: Request,
    viewer: Viewer,
    q: Annotated[str, Query(max_length=100)] = "",
    catalog: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    types = console_context(request).deps.catalog.types()
    catalogs = sorted({t.catalog for t in types})
    needle = q.strip().lower()
    shown = [
        t
        for t in types
        if (not catalog or t.catalog == catalog)
        and (not needle or needle in t.name.lower() or needle in t.description.lower())
    ]
    return render(
        request,
        "pages/catalog.html",
        {
            "title": "Event catalog",
            "section": "catalog",
            "types": shown,
            "total": len(types),
            "catalogs": catalogs,
            "filters": {"q": q, "catalog": catalog},
        },
    )


async def _receiving_endpoints(
    context: ConsoleContext, viewer: SignedIn, type_name: str
) -> tuple[list[Endpoint], bool] | None:
    """The organization's endpoints subscribed to `type_name` (None in the operator's
    console), and whether the list was cut short."""
    if viewer.organization_id is None:
        return None
    found: list[Endpoint] = []
    cursor: str | None = None
    seen = 0
    while seen < ENDPOINTS_SHOWN:
        page = await endpoints.list_endpoints(
            context.deps, viewer.actor, limit=ENDPOINT_PAGE, cursor=cursor
        )
        seen += len(page.items)
        found.extend(e for e in page.items if matches_any(e.event_types, type_name))
        if page.next_cursor is None or not page.items:
            return found, False
        cursor = page.next_cursor
    return found, True


@router.get("/catalog/{type_name}", include_in_schema=False)
async def catalog_type(request: Request, viewer: Viewer, type_name: str) -> Response:
    context = console_context(request)
    event_type = context.deps.catalog.get(type_name)
    if event_type is None:
        raise NotFoundError(f"There is no event type {type_name} in the catalog.")
    versions = [
        {
            "number": number,
            "tables": schema_tables(version.schema),
            "raw": _pretty(version.schema),
            "examples": [_pretty(example) for example in version.examples],
        }
        for number, version in sorted(event_type.versions.items(), reverse=True)
    ]
    receiving = await _receiving_endpoints(context, viewer, type_name)
    return render(
        request,
        "pages/catalog_type.html",
        {
            "title": event_type.name,
            "section": "catalog",
            "type": event_type,
            "versions": versions,
            "attributes": None
            if event_type.attributes_schema is None
            else schema_tables(event_type.attributes_schema)[0],
            "receiving": None if receiving is None else receiving[0],
            "receiving_cut": bool(receiving and receiving[1]),
        },
    )
