"""State an integrator polls (contract section 7): the compliance rollup per order, account locks
per dlt owner, dlt entitlement state. Each answers a strong ETag and 304 on If-None-Match."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request, Response

from tidings.api.context import Ctx, OrgKey
from tidings.api.etag import matches, not_modified, strong_etag
from tidings.auth import Actor
from tidings.projections import COMPLIANCE, ENTITLEMENT, LOCKS, public_state
from tidings.services.state import get_state

router = APIRouter(tags=["state"])

Key = Annotated[str, Path(min_length=1, max_length=200)]


async def _state(request: Request, ctx: Ctx, actor: Actor, kind: str, key: str) -> Response:
    projection = await get_state(ctx.deps, actor, kind, key)
    org = actor.organization_id
    etag = strong_etag(kind, org, key, projection.version, projection.last_event_id)
    if matches(request, etag):
        return not_modified(etag)
    return Response(
        content=orjson.dumps(public_state(projection)),
        media_type="application/json",
        headers={"ETag": etag},
    )


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
    "/v1/entitlements/{entitlement_id}",
    summary="a dlt entitlement's state (started, pending_requirements, completed, failed)",
    response_model=None,
)
async def entitlement(entitlement_id: Key, request: Request, ctx: Ctx, actor: OrgKey) -> Response:
    return await _state(request, ctx, actor, ENTITLEMENT, entitlement_id)
