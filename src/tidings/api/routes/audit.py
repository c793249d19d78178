"""The audit trail (issue 22 section 3): `GET /v1/audit-log`, keyset paged, oldest first. An
organization key reads its organization's entries; a platform admin key reads every entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tidings.api.context import AnyKey, Ctx, Limit
from tidings.clock import to_rfc3339
from tidings.errors import time_at
from tidings.models import AuditEntry
from tidings.services import audit
from tidings.services.paging import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/audit-log", tags=["audit"])


class AuditActor(BaseModel):
    keyId: str = Field(description="the API key that acted (behind a console session too)")
    sessionId: str | None = Field(description="the console session acting with the key")
    clientAddress: str | None


class AuditOut(BaseModel):
    id: str
    at: str
    organizationUuid: str | None = Field(description="null: a platform-wide action")
    actor: AuditActor
    action: str = Field(description='e.g. "endpoint.update", "endpoint.secret_read"')
    targetId: str | None
    changes: dict[str, Any] = Field(
        description='changed fields and their new values; secrets and headers as "(changed)"'
    )


class AuditPage(BaseModel):
    items: list[AuditOut]
    nextCursor: str | None


def entry_view(e: AuditEntry) -> AuditOut:
    return AuditOut(
        id=e.id,
        at=to_rfc3339(e.at),
        organizationUuid=e.organization_id,
        actor=AuditActor(
            keyId=e.actor_key_id, sessionId=e.actor_session_id, clientAddress=e.client_address
        ),
        action=e.action,
        targetId=e.target_id,
        changes=e.changes,
    )


@router.get(
    "",
    response_model=AuditPage,
    summary="the audit trail: the caller's organization's entries, or every entry for the "
    "platform; oldest first",
)
async def list_audit_log(
    ctx: Ctx,
    actor: AnyKey,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    page = await audit.list_entries(
        ctx.deps,
        actor,
        action=action,
        target_id=target_id,
        since=time_at(since, "query.since"),
        limit=limit,
        cursor=cursor,
    )
    return AuditPage(items=[entry_view(e) for e in page.items], nextCursor=page.next_cursor)
