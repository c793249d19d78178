"""Organizations, partners and API keys: platform keys only (contract section 7)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from tidings.api.context import Ctx, PlatformKey
from tidings.auth import hash_key, new_key
from tidings.errors import ConflictError, NotFoundError
from tidings.ids import new_id
from tidings.models import ApiKey, KeyKind, Organization, Partner
from tidings.store.base import Conflict

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


class ApiKeyOut(BaseModel):
    id: str
    apiKey: str


async def _organization(ctx: Ctx, organization_id: str) -> Organization:
    org = await ctx.store.get_organization(organization_id)
    if org is None:
        raise NotFoundError(f"no organization {organization_id}")
    return org


@router.post("", status_code=201, response_model=OrganizationOut, summary="create an organization")
async def create_organization(
    body: OrganizationIn, ctx: Ctx, principal: PlatformKey
) -> OrganizationOut:
    now = ctx.clock()
    org = Organization(
        id=body.organizationUuid or str(uuid.uuid4()), name=body.name, created_at=now
    )
    key = new_key(KeyKind.ORGANIZATION)
    api_key = ApiKey(
        id=new_id("key", now), kind=KeyKind.ORGANIZATION, organization_id=org.id, created_at=now
    )
    try:
        await ctx.store.create_organization(org, api_key, hash_key(key))
    except Conflict as exc:
        raise ConflictError(f"organization {org.id} exists already") from exc
    return OrganizationOut(organizationUuid=org.id, name=org.name, apiKey=key)


@router.post(
    "/{organization_uuid}/partners",
    status_code=201,
    response_model=PartnerOut,
    summary="authorize a partner for an organization",
)
async def create_partner(
    organization_uuid: OrgUuid, body: PartnerIn, ctx: Ctx, principal: PlatformKey
) -> PartnerOut:
    await _organization(ctx, organization_uuid)
    partner = Partner(
        organization_id=organization_uuid,
        partner_uuid=body.partnerUuid or str(uuid.uuid4()),
        name=body.name,
        created_at=ctx.clock(),
    )
    try:
        await ctx.store.create_partner(partner)
    except Conflict as exc:
        raise ConflictError(f"partner {partner.partner_uuid} exists already") from exc
    return PartnerOut(partnerUuid=partner.partner_uuid, name=partner.name)


@router.get(
    "/{organization_uuid}/partners",
    response_model=PartnerList,
    summary="the organization's partners",
)
async def list_partners(
    organization_uuid: OrgUuid, ctx: Ctx, principal: PlatformKey
) -> PartnerList:
    await _organization(ctx, organization_uuid)
    partners = await ctx.store.list_partners(organization_uuid)
    return PartnerList(
        items=[PartnerOut(partnerUuid=p.partner_uuid, name=p.name) for p in partners]
    )


@router.post(
    "/{organization_uuid}/api-keys",
    status_code=201,
    response_model=ApiKeyOut,
    summary="issue another organization key",
)
async def create_api_key(organization_uuid: OrgUuid, ctx: Ctx, principal: PlatformKey) -> ApiKeyOut:
    await _organization(ctx, organization_uuid)
    now = ctx.clock()
    key = new_key(KeyKind.ORGANIZATION)
    api_key = ApiKey(
        id=new_id("key", now),
        kind=KeyKind.ORGANIZATION,
        organization_id=organization_uuid,
        created_at=now,
    )
    await ctx.store.create_api_key(api_key, hash_key(key))
    return ApiKeyOut(id=api_key.id, apiKey=key)
