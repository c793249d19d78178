"""State an integrator polls (contract section 7): the compliance rollup per order, account locks
per dlt owner, dlt entitlement state, and the look-ups over them (issue 26): rollups changed
since a time, an owner with its locks and entitlements, owners by external id, entitlements by
owner, trigger and state. Each answers a strong ETag and 304 on If-None-Match."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from tidings.api.context import Ctx, Limit, OrgKey, Rfc3339
from tidings.api.etag import matches, not_modified, strong_etag
from tidings.auth import Actor
from tidings.models import JSON, Page
from tidings.projections import COMPLIANCE, ENTITLEMENT, LOCKS, lock_holds
from tidings.services import state
from tidings.services.paging import DEFAULT_LIMIT

router = APIRouter(tags=["state"])

Key = Annotated[str, Path(min_length=1, max_length=200)]
Filter = Annotated[str | None, Query(min_length=1, max_length=200)]
Cursor = Annotated[str | None, Query()]


async def _state(request: Request, ctx: Ctx, actor: Actor, kind: str, key: str) -> Response:
    projection = await state.get_state(ctx.deps, actor, kind, key)
    org = actor.organization_id
    etag = strong_etag(
        kind,
        org,
        key,
        projection.version,
        projection.last_event_id,
        lock_holds(projection, ctx.deps.clock()),
    )
    if matches(request, etag):
        return not_modified(etag)
    return Response(
        content=orjson.dumps(state.state_view(ctx.deps, projection)),
        media_type="application/json",
        headers={"ETag": etag},
    )


def _tagged(request: Request, body: Any) -> Response:
    """A look-up's answer with a strong ETag of its content (304 when the client has it)."""
    content = orjson.dumps(body)
    etag = strong_etag(content.decode())
    if matches(request, etag):
        return not_modified(etag)
    return Response(content=content, media_type="application/json", headers={"ETag": etag})


def _page(request: Request, page: Page[dict[str, JSON]]) -> Response:
    return _tagged(request, {"items": page.items, "nextCursor": page.next_cursor})


@router.get(
    "/v1/orders",
    summary="compliance rollups in the order they changed, by status, decision and time",
    description=(
        "Oldest change first; `changedSince` (RFC 3339) keeps those changed at or after it. "
        "What an integrator polls to reconcile when a webhook was lost, without knowing the "
        "order ids. ETag / If-None-Match like the other state reads."
    ),
    response_model=None,
)
async def orders(
    request: Request,
    ctx: Ctx,
    actor: OrgKey,
    status: Filter = None,
    decision: Filter = None,
    changed_since: Annotated[Rfc3339 | None, Query(alias="changedSince")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    page = await state.orders(
        ctx.deps,
        actor,
        status=status,
        decision=decision,
        changed_since=changed_since,
        limit=limit,
        cursor=cursor,
    )
    return _page(request, page)


@router.get(
    "/v1/orders/{order_id}/compliance",
    summary="compliance rollup of an order (status, decision, updatedAt, lastEventId)",
    response_model=None,
)
async def order_compliance(order_id: Key, request: Request, ctx: Ctx, actor: OrgKey) -> Response:
    return await _state(request, ctx, actor, COMPLIANCE, order_id)


@router.get(
    "/v1/owners/{owner_id}/locks",
    summary="account locks of a dlt owner (funding_locked, trading_locked)",
    response_model=None,
)
async def owner_locks(owner_id: Key, request: Request, ctx: Ctx, actor: OrgKey) -> Response:
    return await _state(request, ctx, actor, LOCKS, owner_id)


@router.get(
    "/v1/owners/{owner_id}",
    summary="a dlt owner: owner_type, external_id, its locks and its entitlements",
    response_model=None,
)
async def owner(owner_id: Key, request: Request, ctx: Ctx, actor: OrgKey) -> Response:
    return _tagged(request, await state.owner(ctx.deps, actor, owner_id))


@router.get(
    "/v1/owners",
    summary="dlt owners in change order; externalId finds one by the integrator's own id",
    response_model=None,
)
async def owners(
    request: Request,
    ctx: Ctx,
    actor: OrgKey,
    external_id: Annotated[str | None, Query(alias="externalId", min_length=1, max_length=200)] = (
        None
    ),
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    page = await state.owners(ctx.deps, actor, external_id=external_id, limit=limit, cursor=cursor)
    return _page(request, page)


@router.get(
    "/v1/entitlements",
    summary="dlt entitlements in change order, by owner, trigger and state",
    response_model=None,
)
async def entitlements(
    request: Request,
    ctx: Ctx,
    actor: OrgKey,
    owner_id: Annotated[str | None, Query(alias="ownerId", min_length=1, max_length=200)] = None,
    trigger_id: Annotated[str | None, Query(alias="triggerId", min_length=1, max_length=200)] = (
        None
    ),
    state_name: Annotated[str | None, Query(alias="state")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    page = await state.entitlements(
        ctx.deps,
        actor,
        owner_id=owner_id,
        trigger_id=trigger_id,
        state=state_name,
        limit=limit,
        cursor=cursor,
    )
    return _page(request, page)


@router.get(
    "/v1/entitlements/{entitlement_id}",
    summary="a dlt entitlement's state (started, pending_requirements, completed, failed)",
    response_model=None,
)
async def entitlement(entitlement_id: Key, request: Request, ctx: Ctx, actor: OrgKey) -> Response:
    return await _state(request, ctx, actor, ENTITLEMENT, entitlement_id)
