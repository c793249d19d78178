"""Replaying an endpoint's window of deliveries (`since`, `until`, `status`, `missing`): the
form asks first for a preview (`services.replay.preview_replay_endpoint`: the same checks and
the same counting rules as the replay, nothing written), shows how many deliveries would be
sent, and only a confirmation posted from that preview replays them
(`services.replay.replay_endpoint`, as `POST /v1/endpoints/{id}/replay` does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from tidings.console.context import console_context
from tidings.console.forms import FormErrors, field_errors, time_field
from tidings.console.templating import flash, page_url, render
from tidings.console.viewer import Change, OrgId, SignedIn
from tidings.errors import ConflictError, Issues, NotFoundError, ValidationFailed
from tidings.models import Endpoint
from tidings.services import endpoints, replay
from tidings.services.paging import MAX_LIMIT

router = APIRouter()

FIELDS = ("endpoint", "since", "until", "status", "missing")
STATUS_CHOICES = tuple(str(s) for s in replay.REPLAYABLE)
ENDPOINTS_OFFERED = MAX_LIMIT  # the select lists the first ones; any id can be typed in the address


@dataclass(frozen=True, slots=True)
class ReplayForm:
    endpoint: str = ""
    since: str = ""
    until: str = ""
    status: tuple[str, ...] = ("failed",)
    missing: bool = False

    @classmethod
    def of(cls, values: FormData | dict[str, list[str]]) -> ReplayForm:
        def first(name: str) -> str:
            got = values.getlist(name) if isinstance(values, FormData) else values.get(name, [])
            text = next((v for v in got if isinstance(v, str)), "")
            return text[:200]

        statuses = (
            values.getlist("status") if isinstance(values, FormData) else values.get("status", [])
        )
        return cls(
            endpoint=first("endpoint").strip(),
            since=first("since"),
            until=first("until"),
            status=tuple(s for s in statuses if isinstance(s, str))[:10],
            missing=first("missing") in ("on", "true", "1"),
        )

    def window(self, now: float) -> replay.ReplayWindow:
        issues = Issues()
        since = time_field(self.since, "$.since", issues, now)
        if since is None and not issues.items:
            issues.add("$.since", "is required: where the window starts")
        until = time_field(self.until, "$.until", issues, now)
        if not self.endpoint:
            issues.add("$.endpoint", "pick the endpoint to replay to")
        issues.raise_if_any()
        assert since is not None
        return replay.ReplayWindow(
            since=since, until=until, status=list(self.status), missing=self.missing
        )

    def query(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "since": self.since,
            "until": self.until,
            "status": list(self.status),
            "missing": "on" if self.missing else "",
        }


async def _offered(request: Request, viewer: SignedIn) -> list[Endpoint]:
    page = await endpoints.list_endpoints(
        console_context(request).deps, viewer.actor, limit=ENDPOINTS_OFFERED, cursor=None
    )
    return page.items


async def _page(
    request: Request,
    viewer: SignedIn,
    form: ReplayForm,
    *,
    errors: FormErrors | None = None,
    preview: replay.ReplayPreview | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "pages/replay.html",
        {
            "title": "Replay deliveries",
            "section": "deliveries",
            "form": form,
            "errors": errors or FormErrors(),
            "preview": preview,
            "endpoints": await _offered(request, viewer),
            "status_choices": STATUS_CHOICES,
        },
        status_code=status_code,
    )


def _refused(exc: ValidationFailed | ConflictError) -> FormErrors:
    if isinstance(exc, ValidationFailed):
        return field_errors(exc, FIELDS)
    return FormErrors({"_form": [exc.message]})


@router.get("/replay", include_in_schema=False)
async def replay_form(
    request: Request,
    organization_id: OrgId,
    endpoint: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[list[str] | None, Query(max_length=20)] = None,
    missing: Annotated[str, Query(max_length=5)] = "",
    preview: Annotated[str, Query(max_length=5)] = "",
) -> Response:
    """The form; with `preview`, how many deliveries the replay would send, and the button
    that sends them."""
    viewer: SignedIn = request.state.viewer
    form = ReplayForm.of(
        {
            "endpoint": [endpoint],
            "since": [since],
            "until": [until],
            "status": status if status is not None else ["failed"],
            "missing": [missing],
        }
    )
    if not preview:
        return await _page(request, viewer, form)
    deps = console_context(request).deps
    try:
        counted = await replay.preview_replay_endpoint(
            deps, viewer.actor, form.endpoint, form.window(deps.clock())
        )
    except (ValidationFailed, ConflictError) as exc:
        status_code = 409 if isinstance(exc, ConflictError) else 422
        return await _page(request, viewer, form, errors=_refused(exc), status_code=status_code)
    except NotFoundError:
        errors = FormErrors({"endpoint": ["there is no such endpoint in this organization"]})
        return await _page(request, viewer, form, errors=errors, status_code=404)
    return await _page(request, viewer, form, preview=counted)


@router.post("/replay", include_in_schema=False)
async def replay_window(request: Request, organization_id: OrgId, viewer: Change) -> Response:
    form = ReplayForm.of(await request.form())
    deps = console_context(request).deps
    try:
        counts = await replay.replay_endpoint(
            deps, viewer.actor, form.endpoint, form.window(deps.clock())
        )
    except (ValidationFailed, ConflictError) as exc:
        status_code = 409 if isinstance(exc, ConflictError) else 422
        return await _page(request, viewer, form, errors=_refused(exc), status_code=status_code)
    target = page_url("/console/deliveries", {"endpoint": form.endpoint})
    response = RedirectResponse(target, status_code=303)
    return flash(request, response, "replay_started", counts.replayed)
