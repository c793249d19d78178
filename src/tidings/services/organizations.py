"""Organizations and their partners (contract section 7): platform keys only. An organization
is created with its first organization key (shown once)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tidings.auth import Actor, new_organization_key, require_platform
from tidings.errors import ConflictError, Issues, NotFoundError
from tidings.models import Organization, Page, Partner
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import Conflict

NAME_CHARS = 200
ID_CHARS = 100


def _check(name: str, id_path: str, given_id: str | None) -> None:
    """The API's rules for a name and a chosen id (its request models say the same), for the
    faces that have no request model (the console)."""
    issues = Issues()
    if not 1 <= len(name) <= NAME_CHARS:
        issues.add("$.name", f"must be 1 to {NAME_CHARS} characters")
    if given_id is not None and not 1 <= len(given_id) <= ID_CHARS:
        issues.add(id_path, f"must be 1 to {ID_CHARS} characters")
    issues.raise_if_any()


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
    _check(name, "$.organizationUuid", organization_id)
    now = deps.clock()
    org = Organization(id=organization_id or str(uuid.uuid4()), name=name, created_at=now)
    key = new_organization_key(org.id, now)
    try:
        entry = audit.entry(
            deps,
            actor,
            "organization.create",
            org.id,
            {"name": name, "apiKeyId": key.record.id},
            organization_id=org.id,
            now=now,
        )
        await deps.store.create_organization(org, key.record, key.key_hash, entry)
    except Conflict as exc:
        raise ConflictError(f"organization {org.id} exists already") from exc
    return NewOrganization(org, key.api_key)


async def list_organizations(
    deps: Deps, actor: Actor, *, limit: int, cursor: str | None, search: str | None = None
) -> Page[Organization]:
    """Every organization, oldest first; with `search`, those whose name contains it (case
    does not matter) or whose id it is."""
    require_platform(actor)
    check_page(limit)
    needle = (search or "").strip()
    try:
        if needle:
            return await deps.store.search_organizations(needle, limit=limit, cursor=cursor)
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
    _check(name, "$.partnerUuid", partner_uuid)
    partner = Partner(
        organization_id=organization_id,
        partner_uuid=partner_uuid or str(uuid.uuid4()),
        name=name,
        created_at=deps.clock(),
    )
    try:
        entry = audit.entry(
            deps,
            actor,
            "partner.create",
            partner.partner_uuid,
            {"name": name},
            organization_id=organization_id,
            now=partner.created_at,
        )
        await deps.store.create_partner(partner, entry)
    except Conflict as exc:
        raise ConflictError(f"partner {partner.partner_uuid} exists already") from exc
    return partner


async def list_partners(deps: Deps, actor: Actor, organization_id: str) -> list[Partner]:
    await get_organization(deps, actor, organization_id)
    return await deps.store.list_partners(organization_id)
