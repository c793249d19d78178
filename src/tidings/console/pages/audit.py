"""The audit trail in the console (issue 22 section 3): who changed what, who read a secret, who
replayed or erased, as `GET /v1/audit-log` pages it (`services.audit.list_entries`): an
organization's own entries in its console, every entry in the operator's. Filters: action,
target id, since (RFC 3339); keyset pages, oldest first."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors
from tidings.console.templating import render
from tidings.console.viewer import Viewer
from tidings.errors import BadRequest, ValidationFailed, time_at
from tidings.models import AuditEntry
from tidings.services import audit
from tidings.services.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter()


def _changes(entry: AuditEntry) -> str:
    return (
        orjson.dumps(entry.changes, option=orjson.OPT_SORT_KEYS).decode() if entry.changes else ""
    )


@router.get("/audit", include_in_schema=False)
async def audit_trail(
    request: Request,
    viewer: Viewer,
    action: Annotated[str, Query(max_length=100)] = "",
    target: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    errors = FormErrors()
    items: list[Any] = []
    next_cursor: str | None = None
    try:
        page = await audit.list_entries(
            console_context(request).deps,
            viewer.actor,
            action=action.strip() or None,
            target_id=target.strip() or None,
            since=time_at(since.strip() or None, "query.since"),
            limit=limit,
            cursor=cursor,
        )
        items, next_cursor = page.items, page.next_cursor
    except ValidationFailed as exc:
        if "query.cursor" in exc.message:
            raise BadRequest("This page address has a cursor the console did not make.") from exc
        errors = FormErrors({"since": [exc.message.split(": ", 1)[-1]]})
    params = {
        "action": action,
        "target": target,
        "since": since,
        "limit": limit if limit != DEFAULT_LIMIT else "",
    }
    return render(
        request,
        "pages/audit.html",
        {
            "title": "Audit trail",
            "section": "audit",
            "entries": [(e, _changes(e)) for e in items],
            "errors": errors,
            "params": params,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "show_organization": viewer.is_operator,
        },
        status_code=422 if errors else 200,
    )
