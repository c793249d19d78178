"""The operator's organizations: the list (oldest first, keyset-paginated, searched by name or
id), creating one (its first key shown once), and one organization with its partners (add one),
its API keys (what they are, never the keys) and "open as this organization": a portal link,
read-only by default. Every change is a `services.organizations` / `services.console_sessions`
operation with the operator's actor, the API's own rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors
from tidings.console.pages.home import _minted_view
from tidings.console.templating import render
from tidings.console.viewer import Change, Operator, SignedIn
from tidings.errors import BadRequest, ConflictError, ValidationFailed
from tidings.services import console_sessions, keys, organizations
from tidings.services.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter()

ORG_FIELDS = ("name", "organizationUuid")
PARTNER_FIELDS = ("name", "partnerUuid")
LINK_FIELDS = ("ttlSeconds", "readOnly")
OrgUuid = Annotated[str, Path(min_length=1, max_length=100)]


async def _list_page(
    request: Request,
    viewer: SignedIn,
    *,
    q: str = "",
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    form: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    try:
        page = await organizations.list_organizations(
            console_context(request).deps, viewer.actor, limit=limit, cursor=cursor, search=q
        )
    except ValidationFailed as exc:
        raise BadRequest("This page address has a cursor the console did not make.") from exc
    return render(
        request,
        "pages/organizations.html",
        {
            "title": "Organizations",
            "section": "organizations",
            "organizations": page.items,
            "next_cursor": page.next_cursor,
            "first_page": cursor is None,
            "q": q,
            "params": {"q": q, "limit": limit if limit != DEFAULT_LIMIT else ""},
            "form": form or {"name": "", "organizationUuid": ""},
            "errors": errors or FormErrors(),
        },
        status_code=status_code,
    )


@router.get("/organizations", include_in_schema=False)
async def organizations_list(
    request: Request,
    viewer: Operator,
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    return await _list_page(request, viewer, q=q, cursor=cursor, limit=limit)


@router.post("/organizations", include_in_schema=False)
async def create_organization(
    request: Request,
    viewer: Operator,
    changer: Change,
    name: Annotated[str, Form(max_length=1000)] = "",
    organizationUuid: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"name": name, "organizationUuid": organizationUuid}
    try:
        created = await organizations.create_organization(
            console_context(request).deps,
            viewer.actor,
            name.strip(),
            organizationUuid.strip() or None,
        )
    except ValidationFailed as exc:
        errors = field_errors(exc, ORG_FIELDS)
        return await _list_page(request, viewer, form=form, errors=errors, status_code=422)
    except ConflictError as exc:
        errors = FormErrors({"organizationUuid": [exc.message]})
        return await _list_page(request, viewer, form=form, errors=errors, status_code=409)
    return render(
        request,
        "pages/organization_created.html",
        {
            "title": "Organization created",
            "section": "organizations",
            "org": created.organization,
            "api_key": created.api_key,
        },
        status_code=201,
    )


async def _org_page(
    request: Request,
    viewer: SignedIn,
    organization_id: str,
    *,
    partner_form: dict[str, str] | None = None,
    partner_errors: FormErrors | None = None,
    link_form: dict[str, object] | None = None,
    link_errors: FormErrors | None = None,
    minted: dict[str, object] | None = None,
    added: str | None = None,
    status_code: int = 200,
) -> Response:
    deps = console_context(request).deps
    org = await organizations.get_organization(deps, viewer.actor, organization_id)
    partners = await organizations.list_partners(deps, viewer.actor, organization_id)
    api_keys = await keys.list_organization_keys(deps, viewer.actor, organization_id)
    return render(
        request,
        "pages/organization.html",
        {
            "title": org.name,
            "section": "organizations",
            "org": org,
            "partners": partners,
            "api_keys": api_keys,
            "partner_form": partner_form or {"name": "", "partnerUuid": ""},
            "partner_errors": partner_errors or FormErrors(),
            "link_form": link_form
            or {"ttlSeconds": int(console_sessions.PORTAL_LINK_SECONDS), "readOnly": True},
            "link_errors": link_errors or FormErrors(),
            "minted": minted,
            "added": added,
        },
        status_code=status_code,
    )


@router.get("/organizations/{organization_id}", include_in_schema=False)
async def organization_page(
    request: Request, viewer: Operator, organization_id: OrgUuid
) -> Response:
    return await _org_page(request, viewer, organization_id)


@router.post("/organizations/{organization_id}/partners", include_in_schema=False)
async def add_partner(
    request: Request,
    viewer: Operator,
    changer: Change,
    organization_id: OrgUuid,
    name: Annotated[str, Form(max_length=1000)] = "",
    partnerUuid: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"name": name, "partnerUuid": partnerUuid}
    try:
        partner = await organizations.create_partner(
            console_context(request).deps,
            viewer.actor,
            organization_id,
            name.strip(),
            partnerUuid.strip() or None,
        )
    except ValidationFailed as exc:
        errors = field_errors(exc, PARTNER_FIELDS)
        return await _org_page(
            request,
            viewer,
            organization_id,
            partner_form=form,
            partner_errors=errors,
            status_code=422,
        )
    except ConflictError as exc:
        errors = FormErrors({"partnerUuid": [exc.message]})
        return await _org_page(
            request,
            viewer,
            organization_id,
            partner_form=form,
            partner_errors=errors,
            status_code=409,
        )
    return await _org_page(request, viewer, organization_id, added=partner.partner_uuid)


@router.post("/organizations/{organization_id}/portal-link", include_in_schema=False)
async def open_as(
    request: Request,
    viewer: Operator,
    changer: Change,
    organization_id: OrgUuid,
    ttlSeconds: Annotated[str, Form(max_length=20)] = "",
    readOnly: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """A portal link into this organization's console (read-only unless unticked)."""
    form: dict[str, object] = {"ttlSeconds": ttlSeconds.strip(), "readOnly": readOnly is not None}
    try:
        ttl = float(ttlSeconds) if ttlSeconds.strip() else None
    except ValueError:
        errors = FormErrors({"ttlSeconds": ["must be a number of seconds"]})
        return await _org_page(
            request, viewer, organization_id, link_form=form, link_errors=errors, status_code=422
        )
    try:
        minted = await console_sessions.mint_portal_link(
            console_context(request).deps,
            viewer.actor,
            organization_id,
            ttl_seconds=ttl,
            read_only=readOnly is not None,
        )
    except ValidationFailed as exc:
        errors = field_errors(exc, LINK_FIELDS)
        return await _org_page(
            request, viewer, organization_id, link_form=form, link_errors=errors, status_code=422
        )
    return await _org_page(
        request, viewer, organization_id, link_form=form, minted=_minted_view(request, minted)
    )
