"""What every route needs, as FastAPI dependencies: the application context (settings, store,
catalog, publisher, clock), the calling principal from `Authorization: Bearer <key>`, and the
scoping rules of contract section 7 (platform routes, organization routes, 401/403/404).

Routes take `ctx: Ctx` and one of `PlatformKey` / `OrgId`; they never read the environment or
the wall clock themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from tidings.auth import KeyCache, Principal, hash_key
from tidings.clock import Clock, system_clock
from tidings.config import Settings
from tidings.errors import Forbidden, Unauthorized
from tidings.models import KeyKind
from tidings.store.base import Store

MetricsRenderer = Callable[[], Awaitable[tuple[bytes, str]]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass
class AppContext:
    settings: Settings
    store: Store
    catalog: Any  # tidings.catalog.Catalog
    publisher: Any  # tidings.publishing.Publisher
    clock: Clock = system_clock
    metrics: MetricsRenderer | None = None
    keys: KeyCache = field(default_factory=KeyCache)


async def get_context(request: Request) -> AppContext:
    # async: a plain `def` dependency would run in the thread pool, a thread hop per request
    ctx: AppContext = request.app.state.tidings
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


async def get_principal(request: Request, ctx: Ctx) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    key_hash = hash_key(token)
    principal = ctx.keys.get(key_hash)
    if principal is not None:
        return principal
    key = await ctx.store.find_api_key(key_hash)
    if key is None:
        raise Unauthorized("unknown API key")
    principal = Principal(key_id=key.id, kind=key.kind, organization_id=key.organization_id)
    ctx.keys.put(key_hash, principal)
    return principal


AnyKey = Annotated[Principal, Depends(get_principal)]


async def require_platform(principal: AnyKey) -> Principal:
    if principal.kind is not KeyKind.PLATFORM:
        raise Forbidden("this call needs a platform key", code="platform_key_required")
    return principal


async def require_org(principal: AnyKey) -> str:
    """The organization the key belongs to; every query of the route is scoped by it."""
    if principal.kind is not KeyKind.ORGANIZATION or principal.organization_id is None:
        raise Forbidden("this call needs an organization key", code="organization_key_required")
    return principal.organization_id


PlatformKey = Annotated[Principal, Depends(require_platform)]
OrgId = Annotated[str, Depends(require_org)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
