"""What every route needs, as FastAPI dependencies: the application context (settings and the
service layer's `Deps`), and the acting `Actor` from `Authorization: Bearer <key>`.

Routes take `ctx: Ctx` and one of `AnyKey` / `PlatformKey` / `OrgKey`, parse their input, call
an operation of `tidings.services` and render its answer; the rules (which key an operation
needs, tenant scoping, validation) are the services'. The key-kind dependencies check the kind
before the body is parsed too, so a wrong key is a 403 whatever the body holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import Field

from tidings.auth import (
    Actor,
    require_admin,
    require_organization,
    require_publisher,
    require_writer,
)
from tidings.config import Settings
from tidings.errors import RateLimited, Unauthorized
from tidings.models import KeyKind
from tidings.rate_limit import TokenBuckets
from tidings.services.deps import Deps
from tidings.services.keys import authenticate
from tidings.services.paging import MAX_LIMIT

MetricsRenderer = Callable[[], Awaitable[tuple[bytes, str]]]


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    deps: Deps
    metrics: MetricsRenderer | None = None
    limiter: TokenBuckets | None = None  # None: no inbound limit


async def get_context(request: Request) -> AppContext:
    # async: a plain `def` dependency would run in the thread pool, a thread hop per request
    ctx: AppContext = request.app.state.tidings
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


async def get_actor(request: Request, ctx: Ctx) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    actor = await authenticate(ctx.deps, token)
    limiter = ctx.limiter
    if limiter is not None and (
        actor.kind is KeyKind.ORGANIZATION or ctx.settings.api_rate_platform_keys
    ):
        wait = limiter.take(actor.key_id, ctx.deps.clock())
        if wait is not None:
            raise RateLimited(
                f"this key sends more than {limiter.rate:g} requests a second: "
                f"retry in {wait:.1f} s",
                wait,
            )
    client = request.client
    return actor if client is None else replace(actor, client_address=client.host)


AnyKey = Annotated[Actor, Depends(get_actor)]


async def platform_actor(actor: AnyKey) -> Actor:
    """A platform key with scope admin."""
    require_admin(actor)
    return actor


async def publisher_actor(actor: AnyKey) -> Actor:
    """A platform key that may publish (scope admin or publish)."""
    require_publisher(actor)
    return actor


READS = frozenset({"GET", "HEAD"})


async def organization_actor(request: Request, actor: AnyKey) -> Actor:
    """An organization key; scope write for anything but a read."""
    if request.method in READS:
        require_organization(actor)
    else:
        require_writer(actor)
    return actor


async def writer_actor(actor: AnyKey) -> Actor:
    """An organization key with scope write, whatever the method: reading an endpoint's
    signing secret (which lets its holder sign as tidings) is no `read` key's business."""
    require_writer(actor)
    return actor


PlatformKey = Annotated[Actor, Depends(platform_actor)]
PublishKey = Annotated[Actor, Depends(publisher_actor)]
OrgKey = Annotated[Actor, Depends(organization_actor)]
WriterKey = Annotated[Actor, Depends(writer_actor)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
# A time the route parses itself (`errors.time_at`: a 422 on its path if it cannot): a string,
# described as `date-time` (RFC 3339) so a client or a generator knows what to send.
Rfc3339 = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
