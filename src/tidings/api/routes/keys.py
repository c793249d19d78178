"""API keys (issue 22): make platform keys, list the keys of the caller's organization (or the
platform's), revoke. Organization keys are made by the platform at
`POST /v1/organizations/{uuid}/api-keys` (admin routes). A key is shown once, in clear."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tidings.api.context import AnyKey, AppContext, Ctx, Limit, PlatformKey
from tidings.auth import Actor, NewKey
from tidings.clock import to_rfc3339
from tidings.errors import time_at
from tidings.models import ApiKey
from tidings.services import keys
from tidings.services.paging import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

KeyId = Annotated[str, Path(min_length=1, max_length=100)]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100, description="what the key is for")
    scope: Literal["admin", "publish", "write", "read"] | None = Field(
        default=None,
        description="platform keys: admin (default) or publish; organization keys: write "
        "(default) or read",
    )
    expiresAt: str | None = Field(default=None, description="RFC 3339; default: never")


class KeyCreated(BaseModel):
    id: str
    apiKey: str = Field(description="The key, shown this once: tidings keeps only its hash.")
    name: str | None
    scope: str
    prefix: str | None
    createdAt: str
    expiresAt: str | None


class KeyOut(BaseModel):
    id: str
    kind: Literal["platform", "organization"]
    organizationUuid: str | None
    name: str | None
    scope: str
    prefix: str | None = Field(description="The key's first characters (null: made before 0.x)")
    status: Literal["active", "expired", "revoked"]
    createdAt: str
    lastUsedAt: str | None
    expiresAt: str | None
    revokedAt: str | None


class KeyList(BaseModel):
    items: list[KeyOut]
    nextCursor: str | None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else to_rfc3339(ts)


async def create_from(
    ctx: AppContext, actor: Actor, organization_id: str | None, body: KeyIn | None
) -> KeyCreated:
    """A key made from a request's body: an organization's, or with None a platform key."""
    key = await keys.create_key(
        ctx.deps,
        actor,
        organization_id,
        name=None if body is None else body.name,
        scope=None if body is None else body.scope,
        expires_at=expiry(body),
    )
    return created_view(key)


def expiry(body: KeyIn | None) -> float | None:
    return None if body is None else time_at(body.expiresAt, "$.expiresAt")


def created_view(key: NewKey) -> KeyCreated:
    record = key.record
    return KeyCreated(
        id=record.id,
        apiKey=key.api_key,
        name=record.name,
        scope=str(record.effective_scope),
        prefix=record.prefix,
        createdAt=to_rfc3339(record.created_at),
        expiresAt=_iso(record.expires_at),
    )


def key_view(key: ApiKey, now: float) -> KeyOut:
    status: Literal["active", "expired", "revoked"] = (
        "revoked" if key.revoked_at is not None else "active" if key.usable_at(now) else "expired"
    )
    return KeyOut(
        id=key.id,
        kind="platform" if str(key.kind) == "platform" else "organization",
        organizationUuid=key.organization_id,
        name=key.name,
        scope=str(key.effective_scope),
        prefix=key.prefix,
        status=status,
        createdAt=to_rfc3339(key.created_at),
        lastUsedAt=_iso(key.last_used_at),
        expiresAt=_iso(key.expires_at),
        revokedAt=_iso(key.revoked_at),
    )


@router.post("", status_code=201, response_model=KeyCreated, summary="make a platform key")
async def create_platform_key(ctx: Ctx, actor: PlatformKey, body: KeyIn | None = None) -> Any:
    return await create_from(ctx, actor, None, body)


@router.get(
    "",
    response_model=KeyList,
    summary="the caller's organization's keys, or the platform keys; oldest first",
)
async def list_keys(
    ctx: Ctx,
    actor: AnyKey,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    page = await keys.list_keys(ctx.deps, actor, limit=limit, cursor=cursor)
    now = ctx.deps.clock()
    return KeyList(items=[key_view(k, now) for k in page.items], nextCursor=page.next_cursor)


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    summary="revoke a key (every process refuses it within 5 s)",
    description="409 for the last platform admin key that still works.",
)
async def revoke_key(key_id: KeyId, ctx: Ctx, actor: AnyKey) -> Any:
    revoked = await keys.revoke_key(ctx.deps, actor, key_id)
    return key_view(revoked, ctx.deps.clock())
