"""Portal links (platform keys): `POST /v1/organizations/{uuid}/portal-sessions` mints a
single-use link that opens a browser session of the console scoped to that organization
(issue 21). The rules live in `services.console_sessions`, which the console's own "open an
organization's console" form calls too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from tidings.api.context import Ctx, PlatformKey
from tidings.api.views import iso
from tidings.services import console_sessions

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])

OrgUuid = Annotated[str, Path(min_length=1, max_length=100)]


class PortalSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttlSeconds: float | None = Field(
        default=None,
        description=(
            f"how long the link can be opened, {console_sessions.PORTAL_LINK_MIN_SECONDS:g} to "
            f"{console_sessions.PORTAL_LINK_MAX_SECONDS:g} s "
            f"(default {console_sessions.PORTAL_LINK_SECONDS:g})"
        ),
    )
    readOnly: bool = Field(default=False, description="a session that cannot change anything")


class PortalSessionOut(BaseModel):
    url: str = Field(description="open it once, before expiresAt; it carries a secret token")
    expiresAt: str


@router.post(
    "/{organization_uuid}/portal-sessions",
    status_code=201,
    response_model=PortalSessionOut,
    summary="a single-use link into the organization's console",
)
async def create_portal_session(
    organization_uuid: OrgUuid,
    request: Request,
    ctx: Ctx,
    actor: PlatformKey,
    body: PortalSessionIn | None = None,
) -> PortalSessionOut:
    body = body or PortalSessionIn()
    minted = await console_sessions.mint_portal_link(
        ctx.deps, actor, organization_uuid, ttl_seconds=body.ttlSeconds, read_only=body.readOnly
    )
    url = console_sessions.portal_link_url(
        minted.token,
        public_url=ctx.settings.public_url,
        request_origin=f"{request.url.scheme}://{request.url.netloc}",
    )
    return PortalSessionOut(url=url, expiresAt=iso(minted.link.expires_at) or "")
