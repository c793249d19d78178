"""Organizations and their partners (contract section 7): platform keys only. An organization
is created with its first organization key (shown once)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tidings.auth import Actor, new_organization_key, require_platform
from tidings.errors import ConflictError, NotFoundError
from tidings.models import Organization, Page, Partner
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import Conflict


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization: Organization
    api_key: str  # its first organization key, in clear: shown once


async def create_organization(
    deps: Deps, actor: Actor, name: str, organization_id: str | None = None
) -> NewOrganization:
    """`organization_id` lets the platform reuse its own tenant id (409 if taken); default a
    new UUID."""
    require_platform(actor)
    now = deps.clock()
    org = Organization(id=organization_id or str(uuid.uuid4()), name=name, created_at=now)
    key = new_organization_key(org.id, now)
    try:
        await deps.store.create_organization(org, key.record, key.key_hash)
    except Conflict as exc:
        raise ConflictError(f"organization {org.id} exists already") from exc
    return NewOrganization(org, key.api_key)


async def list_organizations(
    deps: Deps, actor: Actor, *, limit: int, cursor: str | None
) -> Page[Organization]:
    """Every organization, oldest first."""
    require_platform(actor)
    check_page(limit)
    try:
        return await deps.store.list_organizations(limit=limit, cursor=cursor)
    except ValueError as exc:
        raise bad_cursor() from exc


async def get_organization(deps: Deps, actor: Actor, organization_id: str) -> Organization:
    require_platform(actor)
    org = await deps.store.get_organization(organization_id)
    if org is None:
        raise NotFoundError(f"no organization {organization_id}")
    return org


async def create_partner(
    deps: Deps, actor: Actor, organization_id: str, name: str, partner_uuid: str | None = None
) -> Partner:
    """Authorize a partner for the organization; `partner_uuid` defaults to a new UUID."""
    await get_organization(deps, actor, organization_id)
    partner = Partner(
        organization_id=organization_id,
        partner_uuid=partner_uuid or str(uuid.uuid4()),
        name=name,
        created_at=deps.clock(),
    )
    try:
        await deps.store.create_partner(partner)
    except Conflict as exc:
        raise ConflictError(f"partner {partner.partner_uuid} exists already") from exc
    return partner


async def list_partners(deps: Deps, actor: Actor, organization_id: str) -> list[Partner]:
    await get_organization(deps, actor, organization_id)
    return await deps.store.list_partners(organization_id)
