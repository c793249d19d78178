"""Registering an endpoint from the console: the form reads its fields into the service
layer's `EndpointInput` and `services.endpoints.create_endpoint` decides, with the API's own
rules (patterns, a bare `*` refused, formats, partners, versions, headers, the SSRF guard). A
refusal re-renders the form with each message beside its field; a new endpoint's secret is
shown once, as the API shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from tidings.console.context import console_context
from tidings.console.forms import (
    FormErrors,
    field_errors,
    header_lines,
    lines,
    optional_integers,
    optional_number,
)
from tidings.console.templating import render
from tidings.console.viewer import Change, OrgId
from tidings.errors import Issues, ValidationFailed
from tidings.models import DEFAULT_SOURCES, SOURCES, Endpoint
from tidings.services import endpoints

router = APIRouter()

FORMAT_OPTIONS = (
    ("", "the subscribed catalog's own (novatrade or dlt)"),
    ("novatrade", "novatrade"),
    ("dlt", "dlt"),
    ("standard", "standard"),
)
ORDERING_OPTIONS = (
    ("none", "none: as they come"),
    ("subject", "subject: one subject's events one at a time, in order"),
)
MAX_FIELD_CHARS = 20_000  # longer than any valid value of any field


@dataclass(frozen=True, slots=True)
class EndpointForm:
    """The form as posted (kept to show it again beside its errors)."""

    url: str = ""
    eventTypes: str = ""
    format: str = ""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    partnerIds: str = ""
    acceptedSchemaVersions: str = ""
    description: str = ""
    headers: str = ""
    rateLimitPerSecond: str = ""
    filter: str = ""  # JSON (docs/api.md, Filters)
    recordFiltered: str = ""  # "on" when checked
    ordering: str = "none"

    @classmethod
    def posted(cls, form: FormData) -> EndpointForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""

        texts = {name: text(name) for name in FIELDS if name != "sources"}
        sources = tuple(s for s in form.getlist("sources") if isinstance(s, str))
        return cls(sources=sources, **texts)

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointForm:
        """An endpoint's configuration as its edit form shows it."""
        versions = endpoint.accepted_schema_versions
        rate = endpoint.rate_limit_per_second
        return cls(
            url=endpoint.url,
            eventTypes="\n".join(endpoint.event_types),
            format=endpoint.format,
            sources=tuple(endpoint.sources),
            partnerIds="\n".join(endpoint.partner_ids or ()),
            acceptedSchemaVersions=", ".join(str(v) for v in versions or ()),
            description=endpoint.description or "",
            headers="\n".join(f"{k}: {v}" for k, v in endpoint.headers.items()),
            rateLimitPerSecond="" if rate is None else f"{rate:g}",
            filter="" if endpoint.filter is None else json.dumps(endpoint.filter.spec, indent=2),
            recordFiltered="on" if endpoint.record_filtered else "",
            ordering=endpoint.ordering,
        )

    def read(self, issues: Issues) -> endpoints.EndpointInput:
        """The service's input; what cannot be read goes into `issues` at its path."""
        return endpoints.EndpointInput(
            url=self.url.strip(),
            event_types=lines(self.eventTypes),
            format=self.format or None,
            sources=self.sources,
            partner_ids=lines(self.partnerIds) or None,
            accepted_schema_versions=optional_integers(
                self.acceptedSchemaVersions, "$.acceptedSchemaVersions", issues
            ),
            description=self.description.strip() or None,
            headers=header_lines(self.headers, "$.headers", issues),
            rate_limit_per_second=optional_number(
                self.rateLimitPerSecond, "$.rateLimitPerSecond", issues
            ),
            filter=self._filter(issues),
            record_filtered=self.recordFiltered == "on",
            ordering=self.ordering or "none",
        )

    def _filter(self, issues: Issues) -> dict[str, Any] | None:
        if not self.filter.strip():
            return None
        try:
            spec = json.loads(self.filter)
        except ValueError as exc:
            issues.add("$.filter", f"not JSON: {exc}")
            return None
        if not isinstance(spec, dict):
            issues.add("$.filter", 'must be a JSON object: {"all": [...]}, {"any": [...]} or '
                       'a condition {"path": ..., "eq": ...}')  # fmt: skip
            return None
        return spec


FIELDS = tuple(EndpointForm.__dataclass_fields__)


def form_page(
    request: Request,
    form: EndpointForm,
    errors: FormErrors,
    *,
    editing: Endpoint | None = None,
    status_code: int = 200,
) -> Response:
    """The form to register an endpoint, or to change `editing`."""
    names = console_context(request).deps.catalog.names()
    return render(
        request,
        "pages/endpoint_form.html",
        {
            "title": "Register an endpoint" if editing is None else f"Change {editing.url}",
            "section": "endpoints",
            "editing": editing,
            "form": form,
            "errors": errors,
            "format_options": FORMAT_OPTIONS,
            "ordering_options": ORDERING_OPTIONS,
            "all_sources": sorted(SOURCES),
            "segments": sorted({name.split(".", 1)[0] + ".*" for name in names}),
            "types": sorted(names),
        },
        status_code=status_code,
    )


@router.get("/endpoints/new", include_in_schema=False)
async def new_endpoint(request: Request, organization_id: OrgId) -> Response:
    return form_page(request, EndpointForm(), FormErrors())


@router.post("/endpoints", include_in_schema=False)
async def create_endpoint(request: Request, organization_id: OrgId, viewer: Change) -> Response:
    form = EndpointForm.posted(await request.form())
    issues = Issues()
    given = form.read(issues)
    try:
        issues.raise_if_any()
        created = await endpoints.create_endpoint(
            console_context(request).deps, viewer.actor, given
        )
    except ValidationFailed as exc:
        return form_page(request, form, field_errors(exc, FIELDS), status_code=422)
    return render(
        request,
        "pages/endpoint_created.html",
        {"title": "Endpoint registered", "section": "endpoints", "endpoint": created},
        status_code=201,
    )
