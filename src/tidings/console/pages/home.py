"""The console's start: the operator's overview (deliveries and endpoints at a glance, drawn as
SVG and refreshed by htmx) with portal links for any organization; an integrator goes straight
to its endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors
from tidings.console.templating import render
from tidings.console.viewer import Change, Operator, SignedIn, Viewer
from tidings.errors import NotFoundError, ValidationFailed
from tidings.services import console_sessions
from tidings.services.console_sessions import MintedLink
from tidings.services.overview import system_overview

router = APIRouter()

PORTAL_FORM_FIELDS = ("organizationUuid", "ttlSeconds", "readOnly")
PORTAL_FORM_DEFAULTS = {
    "organizationUuid": "",
    "ttlSeconds": int(console_sessions.PORTAL_LINK_SECONDS),
    "readOnly": True,  # "open as this organization" looks, by default
}


async def _home(
    request: Request,
    viewer: SignedIn,
    form: dict[str, object] | None = None,
    errors: FormErrors | None = None,
    minted: dict[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    overview = await system_overview(console_context(request).deps, viewer.actor)
    return render(
        request,
        "pages/operator_home.html",
        {
            "title": "Overview",
            "section": "home",
            "overview": overview,
            "form": form or PORTAL_FORM_DEFAULTS,
            "errors": errors or FormErrors(),
            "minted": minted,
        },
        status_code=status_code,
    )


@router.get("/", include_in_schema=False)
async def home(request: Request, viewer: Viewer) -> Response:
    if not viewer.is_operator:
        return RedirectResponse("/console/endpoints", status_code=303)
    return await _home(request, viewer)


@router.get("/overview-panel", include_in_schema=False)
async def overview_panel(request: Request, viewer: Operator) -> Response:
    """The overview alone, for htmx to swap in every few seconds."""
    overview = await system_overview(console_context(request).deps, viewer.actor)
    return render(request, "components/overview.html", {"overview": overview})


def _minted_view(request: Request, minted: MintedLink) -> dict[str, object]:
    url = console_sessions.portal_link_url(
        minted.token,
        public_url=console_context(request).settings.public_url,
        request_origin=f"{request.url.scheme}://{request.url.netloc}",
    )
    return {"url": url, "link": minted.link}


@router.post("/portal-links", include_in_schema=False)
async def mint_portal_link(
    request: Request,
    viewer: Operator,
    changer: Change,
    organizationUuid: Annotated[str, Form(max_length=100)] = "",
    ttlSeconds: Annotated[str, Form(max_length=20)] = "",
    readOnly: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    form: dict[str, object] = {
        "organizationUuid": organizationUuid.strip(),
        "ttlSeconds": ttlSeconds.strip(),
        "readOnly": readOnly is not None,
    }
    try:
        ttl = float(ttlSeconds) if ttlSeconds.strip() else None
    except ValueError:
        errors = FormErrors({"ttlSeconds": ["must be a number of seconds"]})
        return await _home(request, viewer, form, errors, status_code=422)
    try:
        minted = await console_sessions.mint_portal_link(
            console_context(request).deps,
            viewer.actor,
            organizationUuid.strip(),
            ttl_seconds=ttl,
            read_only=readOnly is not None,
        )
    except ValidationFailed as exc:
        errors = field_errors(exc, PORTAL_FORM_FIELDS)
        return await _home(request, viewer, form, errors, status_code=422)
    except NotFoundError:
        errors = FormErrors({"organizationUuid": ["there is no organization with this uuid"]})
        return await _home(request, viewer, form, errors, status_code=422)
    return await _home(request, viewer, form, minted=_minted_view(request, minted))
