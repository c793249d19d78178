"""Organizations, partners and API keys: platform keys only (contract section 7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tidings.api.context import Ctx, Limit, PlatformKey
from tidings.api.routes.keys import KeyCreated, KeyIn, create_from
from tidings.clock import to_rfc3339
from tidings.services import organizations
from tidings.services.paging import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])

OrgUuid = Annotated[str, Path(min_length=1, max_length=100)]


class OrganizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    organizationUuid: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="choose the id (e.g. the platform's own tenant uuid); default a new UUID",
    )


class OrganizationOut(BaseModel):
    organizationUuid: str
    name: str
    apiKey: str


class OrganizationItem(BaseModel):
    organizationUuid: str
    name: str
    createdAt: str


class OrganizationList(BaseModel):
    items: list[OrganizationItem]
    nextCursor: str | None = None


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    partnerUuid: str | None = Field(default=None, min_length=1, max_length=100)


class PartnerOut(BaseModel):
    partnerUuid: str
    name: str


class PartnerList(BaseModel):
    items: list[PartnerOut]
    nextCursor: str | None = None


@router.post("", status_code=201, response_model=OrganizationOut, summary="create an organization")
async def create_organization(
    body: OrganizationIn, ctx: Ctx, actor: PlatformKey
) -> OrganizationOut:
    new = await organizations.create_organization(ctx.deps, actor, body.name, body.organizationUuid)
    org = new.organization
    return OrganizationOut(organizationUuid=org.id, name=org.name, apiKey=new.api_key)


@router.get(
    "",
    response_model=OrganizationList,
    summary="every organization, oldest first",
)
async def list_organizations(
    ctx: Ctx,
    actor: PlatformKey,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrganizationList:
    page = await organizations.list_organizations(ctx.deps, actor, limit=limit, cursor=cursor)
    return OrganizationList(
        items=[
            OrganizationItem(organizationUuid=o.id, name=o.name, createdAt=to_rfc3339(o.created_at))
            for o in page.items
        ],
        nextCursor=page.next_cursor,
    )


@router.post(
    "/{organization_uuid}/partners",
    status_code=201,
    response_model=PartnerOut,
    summary="authorize a partner for an organization",
)
async def create_partner(
    organization_uuid: OrgUuid, body: PartnerIn, ctx: Ctx, actor: PlatformKey
) -> PartnerOut:
    partner = await organizations.create_partner(
        ctx.deps, actor, organization_uuid, body.name, body.partnerUuid
    )
    return PartnerOut(partnerUuid=partner.partner_uuid, name=partner.name)


@router.get(
    "/{organization_uuid}/partners",
    response_model=PartnerList,
    summary="the organization's partners",
)
async def list_partners(organization_uuid: OrgUuid, ctx: Ctx, actor: PlatformKey) -> PartnerList:
    partners = await organizations.list_partners(ctx.deps, actor, organization_uuid)
    return PartnerList(
        items=[PartnerOut(partnerUuid=p.partner_uuid, name=p.name) for p in partners]
    )


@router.post(
    "/{organization_uuid}/api-keys",
    status_code=201,
    response_model=KeyCreated,
    summary="issue another organization key (name, scope write or read, expiry)",
)
async def create_api_key(
    organization_uuid: OrgUuid, ctx: Ctx, actor: PlatformKey, body: KeyIn | None = None
) -> KeyCreated:
    return await create_from(ctx, actor, organization_uuid, body)
