"""One endpoint's page: its configuration and health, the edit form (prefilled, the API's
`PATCH` rules through `services.endpoints.update_endpoint`), its signing secret (revealed by a
posted form, never in a URL; rotated with the API's grace period), and delete after a
confirmation page. A foreign or unknown id is a 404 page, as in the API; every change carries
its CSRF token and is refused to a read-only session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from tidings.config import SECRET_ROTATION_GRACE_SECONDS
from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors, optional_number
from tidings.console.pages.endpoint_form import FIELDS, EndpointForm, form_page
from tidings.console.templating import flash, render
from tidings.console.viewer import Change, OrgId
from tidings.errors import Issues, ValidationFailed
from tidings.models import Endpoint
from tidings.services import endpoints
from tidings.services.endpoints import EndpointPatch, SigningSecrets

router = APIRouter()

EndpointId = Annotated[str, Path(min_length=1, max_length=100)]
GRACE_HOURS = SECRET_ROTATION_GRACE_SECONDS / 3600


def page_path(endpoint_id: str) -> str:
    return f"/console/endpoints/{endpoint_id}"


async def _page(
    request: Request,
    endpoint: Endpoint,
    *,
    secrets: SigningSecrets | None = None,
    rotated: bool = False,
    grace_error: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    deps = console_context(request).deps
    viewer = request.state.viewer
    health = (await endpoints.health_of(deps, viewer.actor, [endpoint]))[endpoint.id]
    return render(
        request,
        "pages/endpoint.html",
        {
            "title": f"Endpoint {endpoint.url}",
            "section": "endpoints",
            "endpoint": endpoint,
            "health": health,
            "secrets": secrets,
            "rotated": rotated,
            "grace_hours": f"{GRACE_HOURS:g}",
            "grace_error": grace_error or [],
        },
        status_code=status_code,
    )


@router.get("/endpoints/{endpoint_id}", include_in_schema=False)
async def endpoint_page(
    request: Request, organization_id: OrgId, endpoint_id: EndpointId
) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, request.state.viewer.actor, endpoint_id)
    return await _page(request, endpoint)


@router.get("/endpoints/{endpoint_id}/edit", include_in_schema=False)
async def edit_page(request: Request, organization_id: OrgId, endpoint_id: EndpointId) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, request.state.viewer.actor, endpoint_id)
    return form_page(request, EndpointForm.of(endpoint), FormErrors(), editing=endpoint)


@router.post("/endpoints/{endpoint_id}/edit", include_in_schema=False)
async def edit(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    deps = console_context(request).deps
    current = await endpoints.get_endpoint(deps, viewer.actor, endpoint_id)
    form = EndpointForm.posted(await request.form())
    issues = Issues()
    given = form.read(issues)
    try:
        issues.raise_if_any()
        await endpoints.update_endpoint(
            deps,
            viewer.actor,
            endpoint_id,
            EndpointPatch(
                url=given.url,
                event_types=given.event_types,
                partner_ids=given.partner_ids,
                accepted_schema_versions=given.accepted_schema_versions,
                sources=given.sources,
                format=given.format,
                description=given.description,
                headers=given.headers,
                rate_limit_per_second=given.rate_limit_per_second,
                filter=given.filter,
                record_filtered=given.record_filtered,
                ordering=given.ordering,
            ),
        )
    except ValidationFailed as exc:
        errors = field_errors(exc, FIELDS)
        return form_page(request, form, errors, editing=current, status_code=422)
    return flash(request, RedirectResponse(page_path(endpoint_id), status_code=303), "updated")


@router.post("/endpoints/{endpoint_id}/secret", include_in_schema=False)
async def reveal_secret(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    deps = console_context(request).deps
    secrets = await endpoints.read_secrets(deps, viewer.actor, endpoint_id)
    endpoint = await endpoints.get_endpoint(deps, viewer.actor, endpoint_id)
    return await _page(request, endpoint, secrets=secrets)


@router.post("/endpoints/{endpoint_id}/secret/rotate", include_in_schema=False)
async def rotate_secret(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, viewer.actor, endpoint_id)
    posted = (await request.form()).get("graceHours")
    issues = Issues()
    hours = optional_number(posted if isinstance(posted, str) else "", "$.graceHours", issues)
    try:
        issues.raise_if_any()
        grace = SECRET_ROTATION_GRACE_SECONDS if hours is None else hours * 3600
        secrets = await endpoints.rotate_secret(deps, viewer.actor, endpoint_id, grace)
    except ValidationFailed as exc:
        messages = [str(d.get("message", "")) for d in exc.details or [] if isinstance(d, dict)]
        messages = [m.replace("seconds", "seconds (in hours: 0 to 720)") for m in messages]
        return await _page(
            request, endpoint, grace_error=messages or [exc.message], status_code=422
        )
    endpoint = await endpoints.get_endpoint(deps, viewer.actor, endpoint_id)
    return await _page(request, endpoint, secrets=secrets, rotated=True)


@router.get("/endpoints/{endpoint_id}/delete", include_in_schema=False)
async def delete_page(
    request: Request, organization_id: OrgId, endpoint_id: EndpointId
) -> Response:
    deps = console_context(request).deps
    endpoint = await endpoints.get_endpoint(deps, request.state.viewer.actor, endpoint_id)
    health = (await endpoints.health_of(deps, request.state.viewer.actor, [endpoint]))[endpoint.id]
    return render(
        request,
        "pages/endpoint_delete.html",
        {
            "title": f"Delete {endpoint.url}",
            "section": "endpoints",
            "endpoint": endpoint,
            "health": health,
        },
    )


@router.post("/endpoints/{endpoint_id}/delete", include_in_schema=False)
async def delete(request: Request, endpoint_id: EndpointId, viewer: Change) -> Response:
    deps = console_context(request).deps
    await endpoints.delete_endpoint(deps, viewer.actor, endpoint_id)
    return flash(request, RedirectResponse("/console/endpoints", status_code=303), "deleted")
