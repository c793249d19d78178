"""Endpoint management (contract section 7, organization keys): create, list, read, change,
delete, pause, resume, read and rotate the secret, and bulk replay.

Validation follows contract sections 5 and 6 (see tidings.api.endpoint_config); every problem is
a 422 naming the failing JSON path. Another organization's endpoint answers 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tidings.api.context import DEFAULT_LIMIT, AppContext, Ctx, Limit, OrgId
from tidings.api.endpoint_config import (
    Issues,
    check_event_types,
    check_format,
    check_headers,
    check_partners,
    check_url,
    check_versions,
    dedupe,
)
from tidings.api.replay import create_missing, replayable_endpoint, revive_skipped
from tidings.api.views import endpoint_view, secrets_view
from tidings.clock import parse_rfc3339
from tidings.config import SECRET_ROTATION_GRACE_SECONDS
from tidings.errors import NotFoundError, ValidationFailed
from tidings.ids import new_id
from tidings.models import DeliveryStatus, Endpoint, EndpointSecret
from tidings.signing import generate_secret, secret_fits_format
from tidings.store.base import NotFound

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])

EndpointId = Annotated[str, Path(min_length=1, max_length=100)]
SourceName = Literal["API", "WEB_APP", "SYSTEM"]
FormatName = Literal["novatrade", "dlt", "standard"]
Version = Annotated[StrictInt, Field(ge=1)]
DEFAULT_SOURCES: tuple[SourceName, ...] = ("WEB_APP", "SYSTEM")
MAX_GRACE_SECONDS = 30 * 24 * 3600


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="https:// receiver URL")
    eventTypes: list[Annotated[str, Field(max_length=200)]] = Field(
        min_length=1,
        max_length=200,
        description="exact types or segment wildcards (`kyc.*`); a bare `*` is refused",
    )
    partnerIds: list[str] | None = Field(default=None, description="null: every partner")
    acceptedSchemaVersions: list[Version] | None = Field(
        default=None, description="null: the newest version of each type"
    )
    sources: list[SourceName] = Field(default=list(DEFAULT_SOURCES), min_length=1)
    format: FormatName | None = Field(
        default=None, description="default: the native format of the subscribed catalog"
    )
    description: str | None = Field(default=None, max_length=1000)
    headers: dict[str, str] = Field(default_factory=dict)
    rateLimitPerSecond: float | None = Field(default=None, gt=0, le=100_000)


class EndpointPatch(BaseModel):
    """Only the fields given change; `null` resets the nullable ones to their default."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    eventTypes: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=200
    )
    partnerIds: list[str] | None = None
    acceptedSchemaVersions: list[Version] | None = None
    sources: list[SourceName] | None = Field(default=None, min_length=1)
    format: FormatName | None = None
    description: str | None = Field(default=None, max_length=1000)
    headers: dict[str, str] | None = None
    rateLimitPerSecond: float | None = Field(default=None, gt=0, le=100_000)


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graceSeconds: float = Field(
        default=SECRET_ROTATION_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="how long the old secret keeps signing next to the new one (default 24 h)",
    )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: str = Field(description="RFC 3339; deliveries created at or after it")
    until: str | None = Field(default=None, description="RFC 3339; created before it")
    status: str | list[str] | None = Field(
        default=None,
        description=(
            "which deliveries to replay: one status or a list of pending, succeeded, failed, "
            "held (default: failed)"
        ),
    )
    missing: bool = Field(
        default=False,
        description="also send the window's events the endpoint subscribes to now but never got",
    )


async def _endpoint(ctx: AppContext, organization_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await ctx.store.get_endpoint(organization_id, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"no endpoint {endpoint_id}")
    return endpoint


async def _validate(
    ctx: AppContext,
    organization_id: str,
    candidate: Endpoint,
    *,
    requested_format: str | None,
    url_changed: bool,
) -> str:
    """Check `candidate` (the endpoint as it would be stored); answer its format or raise 422."""
    issues = Issues()
    if url_changed:
        await check_url(ctx, candidate.url, issues)
    fmt: str | None = None
    if check_event_types(ctx, candidate.event_types, issues):
        fmt = check_format(ctx, candidate.event_types, requested_format, issues)
        check_versions(ctx, candidate.event_types, candidate.accepted_schema_versions, issues)
    await check_partners(ctx, organization_id, candidate.partner_ids, issues)
    check_headers(candidate.headers, issues)
    issues.raise_if_any()
    assert fmt is not None
    return fmt


def _tuple(values: list[str] | list[int] | None) -> Any:
    """As given (validation paths index the request's own lists); `_normalized` dedupes."""
    return None if values is None else tuple(values)


def _normalized(endpoint: Endpoint) -> Endpoint:
    """Repeated entries dropped (first kept), accepted versions sorted."""
    versions = endpoint.accepted_schema_versions
    return replace(
        endpoint,
        event_types=tuple(dedupe(endpoint.event_types)),
        sources=tuple(dedupe(endpoint.sources)),
        partner_ids=None if endpoint.partner_ids is None else tuple(dedupe(endpoint.partner_ids)),
        accepted_schema_versions=None if versions is None else tuple(sorted(set(versions))),
    )


@router.post("", status_code=201, summary="register an endpoint")
async def create_endpoint(body: EndpointIn, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    now = ctx.clock()
    candidate = Endpoint(
        id=new_id("ep", now),
        organization_id=organization_id,
        url=body.url,
        event_types=tuple(body.eventTypes),
        format="standard",
        secrets=(),
        partner_ids=_tuple(body.partnerIds),
        accepted_schema_versions=_tuple(body.acceptedSchemaVersions),
        sources=tuple(body.sources),
        description=body.description,
        headers=dict(body.headers),
        rate_limit_per_second=body.rateLimitPerSecond,
        created_at=now,
        updated_at=now,
    )
    fmt = await _validate(
        ctx, organization_id, candidate, requested_format=body.format, url_changed=True
    )
    secret = EndpointSecret(secret=generate_secret(fmt), created_at=now)
    endpoint = _normalized(replace(candidate, format=fmt, secrets=(secret,)))
    await ctx.store.create_endpoint(endpoint)
    return {**endpoint_view(endpoint), "secret": secret.secret}


@router.get("", summary="the organization's endpoints, oldest first")
async def list_endpoints(
    ctx: Ctx,
    organization_id: OrgId,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    try:
        page = await ctx.store.list_endpoints(organization_id, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ValidationFailed(
            "query.cursor: not a cursor this API made",
            details=[{"path": "query.cursor", "message": str(exc)}],
        ) from exc
    return {"items": [endpoint_view(e) for e in page.items], "nextCursor": page.next_cursor}


@router.get("/{endpoint_id}", summary="one endpoint")
async def get_endpoint(endpoint_id: EndpointId, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    return endpoint_view(await _endpoint(ctx, organization_id, endpoint_id))


def _patched(current: Endpoint, body: EndpointPatch, now: float) -> Endpoint:
    given = body.model_fields_set
    for name in ("url", "eventTypes", "sources", "headers"):
        if name in given and getattr(body, name) is None:
            raise ValidationFailed(
                f"$.{name}: must not be null",
                details=[{"path": f"$.{name}", "message": "must not be null"}],
            )
    changes: dict[str, Any] = {"updated_at": now}
    if body.url is not None:
        changes["url"] = body.url
    if body.eventTypes is not None:
        changes["event_types"] = tuple(body.eventTypes)
    if body.sources is not None:
        changes["sources"] = tuple(body.sources)
    if body.headers is not None:
        changes["headers"] = dict(body.headers)
    if "partnerIds" in given:
        changes["partner_ids"] = _tuple(body.partnerIds)
    if "acceptedSchemaVersions" in given:
        changes["accepted_schema_versions"] = _tuple(body.acceptedSchemaVersions)
    if "description" in given:
        changes["description"] = body.description
    if "rateLimitPerSecond" in given:
        changes["rate_limit_per_second"] = body.rateLimitPerSecond
    return replace(current, **changes)


@router.patch(
    "/{endpoint_id}",
    summary="change an endpoint",
    description=(
        "Only the fields given change; `null` resets partnerIds, acceptedSchemaVersions, "
        "description and rateLimitPerSecond to their defaults. The format stays as it is unless "
        "given (it must fit the new eventTypes). When the format changes and the current secret "
        "does not fit it (e.g. to `standard`, which needs a `whsec_` secret), a new secret is "
        "generated, returned once here as `secret`, and the old ones stop signing."
    ),
)
async def patch_endpoint(
    endpoint_id: EndpointId, body: EndpointPatch, ctx: Ctx, organization_id: OrgId
) -> dict[str, Any]:
    current = await _endpoint(ctx, organization_id, endpoint_id)
    now = ctx.clock()
    candidate = _patched(current, body, now)
    requested = body.format if body.format is not None else current.format
    fmt = await _validate(
        ctx,
        organization_id,
        candidate,
        requested_format=requested,
        url_changed=candidate.url != current.url,
    )
    new_secret: str | None = None
    secrets = current.secrets
    if fmt != current.format and not all(secret_fits_format(s.secret, fmt) for s in secrets):
        new_secret = generate_secret(fmt)
        secrets = (EndpointSecret(secret=new_secret, created_at=now),)
    endpoint = _normalized(replace(candidate, format=fmt, secrets=secrets))
    try:
        await ctx.store.update_endpoint(endpoint)
    except NotFound as exc:
        raise NotFoundError(f"no endpoint {endpoint_id}") from exc
    view = endpoint_view(await _endpoint(ctx, organization_id, endpoint_id))
    if new_secret is not None:
        view["secret"] = new_secret
    return view


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    summary="delete an endpoint",
    description="Its history stays readable; its pending and held deliveries become failed.",
)
async def delete_endpoint(endpoint_id: EndpointId, ctx: Ctx, organization_id: OrgId) -> None:
    if not await ctx.store.delete_endpoint(organization_id, endpoint_id, ctx.clock()):
        raise NotFoundError(f"no endpoint {endpoint_id}")


@router.post(
    "/{endpoint_id}/pause",
    summary="pause an endpoint by hand",
    description="No attempts while paused; its deliveries are held, not lost.",
)
async def pause_endpoint(
    endpoint_id: EndpointId, ctx: Ctx, organization_id: OrgId
) -> dict[str, Any]:
    await _endpoint(ctx, organization_id, endpoint_id)
    await ctx.store.pause_endpoint(organization_id, endpoint_id, "paused by hand", ctx.clock())
    return endpoint_view(await _endpoint(ctx, organization_id, endpoint_id))


@router.post(
    "/{endpoint_id}/resume",
    summary="resume an endpoint",
    description="Sends what was held: answers the endpoint and `released`, how many deliveries.",
)
async def resume_endpoint(
    endpoint_id: EndpointId, ctx: Ctx, organization_id: OrgId
) -> dict[str, Any]:
    await _endpoint(ctx, organization_id, endpoint_id)
    released = await ctx.store.resume_endpoint(organization_id, endpoint_id, ctx.clock())
    view = endpoint_view(await _endpoint(ctx, organization_id, endpoint_id))
    return {**view, "released": released}


@router.get(
    "/{endpoint_id}/secret",
    summary="the endpoint's signing secret",
    description="`secret` is the current one; `secrets` lists every secret that signs now.",
)
async def get_secret(endpoint_id: EndpointId, ctx: Ctx, organization_id: OrgId) -> dict[str, Any]:
    endpoint = await _endpoint(ctx, organization_id, endpoint_id)
    return secrets_view(endpoint, ctx.clock())


@router.post(
    "/{endpoint_id}/secret/rotate",
    summary="rotate the signing secret",
    description=(
        "A new secret signs from now on; the previous one keeps signing too (one signature per "
        "secret) for `graceSeconds` (default 86400). Secrets already past their grace are dropped."
    ),
)
async def rotate_secret(
    endpoint_id: EndpointId,
    ctx: Ctx,
    organization_id: OrgId,
    body: RotateIn | None = None,
) -> dict[str, Any]:
    endpoint = await _endpoint(ctx, organization_id, endpoint_id)
    grace = (body or RotateIn()).graceSeconds
    now = ctx.clock()
    kept = [k for k in (old.rotated_out(now, grace) for old in endpoint.secrets) if k is not None]
    new = EndpointSecret(secret=generate_secret(endpoint.format), created_at=now)
    try:
        await ctx.store.set_endpoint_secrets(organization_id, endpoint_id, [new, *kept], now)
    except NotFound as exc:
        raise NotFoundError(f"no endpoint {endpoint_id}") from exc
    return secrets_view(await _endpoint(ctx, organization_id, endpoint_id), now)


def _time(value: str | None, path: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"{path}: not an RFC 3339 time",
            details=[{"path": path, "message": "not an RFC 3339 time"}],
        ) from exc


REPLAYABLE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.FAILED,
    DeliveryStatus.HELD,
)


def _replay_statuses(value: str | list[str] | None) -> list[DeliveryStatus]:
    if value is None:
        return [DeliveryStatus.FAILED]
    given = (
        [(f"$.status[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, list)
        else [("$.status", value)]
    )
    if not given:
        issue = {"path": "$.status", "message": "must not be empty"}
        raise ValidationFailed("$.status: must not be empty", details=[issue])
    names = ", ".join(str(s) for s in REPLAYABLE)
    issues = Issues()
    statuses: list[DeliveryStatus] = []
    for path, name in given:
        if name == DeliveryStatus.SKIPPED:
            issues.add(path, "skipped deliveries cannot be replayed (nothing to send)")
        elif name not in REPLAYABLE:
            issues.add(path, f"unknown status {name!r} (one of {names})")
        elif DeliveryStatus(name) not in statuses:
            statuses.append(DeliveryStatus(name))
    issues.raise_if_any()
    return statuses


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    summary="replay many deliveries of an endpoint",
    description=(
        "Replays the endpoint's deliveries created in [since, until) (RFC 3339) whose status "
        "is `status` (one or a list; default `failed`): each starts a new attempt series with "
        "the same event. With `missing: true` it also creates deliveries for the events of the "
        "window (by their createdAt) that the endpoint subscribes to now but never received. "
        "Deliveries once recorded as `skipped` are sent too when a version the endpoint accepts "
        "now is reachable. Answers `replayed` (all deliveries now on their way), `missing` (of "
        "those, the ones it never received) and `skipped` (newly created but recorded as "
        "skipped because no accepted schemaVersion is reachable). 409 for a paused or deleted "
        "endpoint."
    ),
)
async def replay_endpoint(
    endpoint_id: EndpointId, body: ReplayIn, ctx: Ctx, organization_id: OrgId
) -> dict[str, Any]:
    since = _time(body.since, "$.since")
    until = _time(body.until, "$.until")
    assert since is not None
    if until is not None and until <= since:
        raise ValidationFailed(
            "$.until: must be after since",
            details=[{"path": "$.until", "message": "must be after since"}],
        )
    statuses = _replay_statuses(body.status)
    endpoint = await replayable_endpoint(ctx, organization_id, endpoint_id)
    now = ctx.clock()
    replayed = await ctx.store.replay_endpoint_deliveries(
        organization_id, endpoint_id, since=since, until=until, statuses=statuses, now=now
    )
    missing = skipped = 0
    if body.missing:
        missing = await revive_skipped(ctx, endpoint, since=since, until=until, now=now)
        created, skipped = await create_missing(ctx, endpoint, since=since, until=until, now=now)
        missing += created
    return {"replayed": replayed + missing, "missing": missing, "skipped": skipped}


__all__ = ["router"]
