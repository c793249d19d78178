"""Endpoint management over HTTP (contract section 7, organization keys): create, list, read,
change, delete, pause, resume, read and rotate the secret, and bulk replay.

The request models declare the field limits of `tidings.services.endpoint_rules` (so the OpenAPI
schema shows them); every rule is `tidings.services.endpoints` / `.replay`, and every problem is
a 422 naming the failing JSON path. Another organization's endpoint answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tidings.api.context import Ctx, Limit, OrgKey, Rfc3339, WriterKey
from tidings.api.views import endpoint_view, secrets_view
from tidings.config import SECRET_ROTATION_GRACE_SECONDS
from tidings.errors import time_at
from tidings.models import DEFAULT_SOURCES
from tidings.receiver.wire import WireFormat
from tidings.services import endpoints, ledger, replay
from tidings.services.endpoint_rules import (
    MAX_DESCRIPTION_CHARS,
    MAX_EVENT_TYPES,
    MAX_PATTERN_CHARS,
    MAX_RATE_PER_SECOND,
    MAX_URL_CHARS,
)
from tidings.services.endpoints import MAX_GRACE_SECONDS, UNSET
from tidings.services.paging import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])

FILTER_DESCRIPTION = (
    'Conditions on what an event says: {"all": [...]} or {"any": [...]} (nesting allowed) of '
    'conditions {"path": PATH, OP: VALUE}, OP one of eq, in, exists, prefix; PATH an envelope '
    "field (type, source, partnerUuid, subject, correlationId), attributes.NAME or data.NAME "
    "(dots go deeper), which some subscribed type must declare. Events it refuses get no "
    "delivery (or a skipped one with recordFiltered). null: every subscribed event."
)
FILTER_EXAMPLE = {
    "all": [
        {"path": "attributes.owner_type", "eq": "company"},
        {"path": "data.status", "in": ["VALID", "INVALID"]},
    ]
}

ORDERING_DESCRIPTION = (
    "`subject`: the deliveries of events with one subject go out one at a time, in the order "
    "they were stored (the next is attempted once the previous one succeeded, failed or was "
    "skipped; other subjects are not held up). `none`: no order."
)
OrderingName = Literal["none", "subject"]
EndpointId = Annotated[str, Path(min_length=1, max_length=100)]
SourceName = Literal["API", "WEB_APP", "SYSTEM"]
Version = Annotated[StrictInt, Field(ge=1)]
Pattern = Annotated[str, Field(max_length=MAX_PATTERN_CHARS)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="https:// receiver URL")
    eventTypes: list[Pattern] = Field(
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description="exact types or segment wildcards (`kyc.*`); a bare `*` is refused",
    )
    partnerIds: list[str] | None = Field(default=None, description="null: every partner")
    acceptedSchemaVersions: list[Version] | None = Field(
        default=None, description="null: the newest version of each type"
    )
    sources: list[SourceName] = Field(
        default=cast(list[SourceName], list(DEFAULT_SOURCES)), min_length=1
    )
    format: WireFormat | None = Field(
        default=None, description="default: the native format of the subscribed catalog"
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    headers: dict[str, str] = Field(default_factory=dict)
    rateLimitPerSecond: float | None = Field(default=None, gt=0, le=MAX_RATE_PER_SECOND)
    traceContext: bool = Field(
        default=False,
        description="send each attempt's W3C trace context (traceparent) when tidings traces",
    )
    filter: dict[str, Any] | None = Field(
        default=None, description=FILTER_DESCRIPTION, examples=[FILTER_EXAMPLE]
    )
    recordFiltered: bool = Field(
        default=False,
        description="record the events the filter refuses as skipped deliveries (reason "
        "`filtered`) instead of leaving them out",
    )
    ordering: OrderingName = Field(default="none", description=ORDERING_DESCRIPTION)

    def to_input(self) -> endpoints.EndpointInput:
        return endpoints.EndpointInput(
            url=self.url,
            event_types=self.eventTypes,
            partner_ids=self.partnerIds,
            accepted_schema_versions=self.acceptedSchemaVersions,
            sources=self.sources,
            format=self.format,
            description=self.description,
            headers=self.headers,
            rate_limit_per_second=self.rateLimitPerSecond,
            trace_context=self.traceContext,
            filter=self.filter,
            record_filtered=self.recordFiltered,
            ordering=self.ordering,
        )


class EndpointPatch(BaseModel):
    """Only the fields given change; `null` resets the nullable ones to their default."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)
    eventTypes: list[Pattern] | None = Field(default=None, min_length=1, max_length=MAX_EVENT_TYPES)
    partnerIds: list[str] | None = None
    acceptedSchemaVersions: list[Version] | None = None
    sources: list[SourceName] | None = Field(default=None, min_length=1)
    format: WireFormat | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    headers: dict[str, str] | None = None
    rateLimitPerSecond: float | None = Field(default=None, gt=0, le=MAX_RATE_PER_SECOND)
    traceContext: bool | None = None
    filter: dict[str, Any] | None = Field(default=None, description="null: no filter")
    recordFiltered: bool | None = None
    ordering: OrderingName | None = Field(
        default=None, description="null: back to the default, `none`"
    )

    def to_patch(self) -> endpoints.EndpointPatch:
        """The fields the request gave (an explicit null included), and only those."""
        given = self.model_fields_set
        return endpoints.EndpointPatch(
            **{
                name: getattr(self, field) if field in given else UNSET
                for field, name in _PATCH_FIELDS.items()
            }
        )


_PATCH_FIELDS = {
    "url": "url",
    "eventTypes": "event_types",
    "partnerIds": "partner_ids",
    "acceptedSchemaVersions": "accepted_schema_versions",
    "sources": "sources",
    "format": "format",
    "description": "description",
    "headers": "headers",
    "rateLimitPerSecond": "rate_limit_per_second",
    "traceContext": "trace_context",
    "filter": "filter",
    "recordFiltered": "record_filtered",
    "ordering": "ordering",
}


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
    since: Rfc3339 = Field(description="RFC 3339; deliveries created at or after it")
    until: Rfc3339 | None = Field(default=None, description="RFC 3339; created before it")
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


@router.post("", status_code=201, summary="register an endpoint")
async def create_endpoint(body: EndpointIn, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    endpoint = await endpoints.create_endpoint(ctx.deps, actor, body.to_input())
    return {**endpoint_view(endpoint), "secret": endpoint.secrets[0].secret}


@router.get("", summary="the organization's endpoints, oldest first")
async def list_endpoints(
    ctx: Ctx,
    actor: OrgKey,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = await endpoints.list_endpoints(ctx.deps, actor, limit=limit, cursor=cursor)
    return {"items": [endpoint_view(e) for e in page.items], "nextCursor": page.next_cursor}


@router.get("/{endpoint_id}", summary="one endpoint")
async def get_endpoint(endpoint_id: EndpointId, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    return endpoint_view(await endpoints.get_endpoint(ctx.deps, actor, endpoint_id))


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
    endpoint_id: EndpointId, body: EndpointPatch, ctx: Ctx, actor: OrgKey
) -> dict[str, Any]:
    update = await endpoints.update_endpoint(ctx.deps, actor, endpoint_id, body.to_patch())
    view = endpoint_view(update.endpoint)
    if update.new_secret is not None:
        view["secret"] = update.new_secret
    return view


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    summary="delete an endpoint",
    description="Its history stays readable; its pending and held deliveries become failed.",
)
async def delete_endpoint(endpoint_id: EndpointId, ctx: Ctx, actor: OrgKey) -> None:
    await endpoints.delete_endpoint(ctx.deps, actor, endpoint_id)


@router.post(
    "/{endpoint_id}/pause",
    summary="pause an endpoint by hand",
    description="No attempts while paused; its deliveries are held, not lost.",
)
async def pause_endpoint(endpoint_id: EndpointId, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    return endpoint_view(await endpoints.pause_endpoint(ctx.deps, actor, endpoint_id))


@router.post(
    "/{endpoint_id}/resume",
    summary="resume an endpoint",
    description="Sends what was held: answers the endpoint and `released`, how many deliveries.",
)
async def resume_endpoint(endpoint_id: EndpointId, ctx: Ctx, actor: OrgKey) -> dict[str, Any]:
    resumed = await endpoints.resume_endpoint(ctx.deps, actor, endpoint_id)
    return {**endpoint_view(resumed.endpoint), "released": resumed.released}


@router.get(
    "/{endpoint_id}/secret",
    summary="the endpoint's signing secret",
    description="`secret` is the current one; `secrets` lists every secret that signs now.",
)
async def get_secret(endpoint_id: EndpointId, ctx: Ctx, actor: WriterKey) -> dict[str, Any]:
    return secrets_view(await endpoints.read_secrets(ctx.deps, actor, endpoint_id))


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
    actor: OrgKey,
    body: RotateIn | None = None,
) -> dict[str, Any]:
    grace = (body or RotateIn()).graceSeconds
    return secrets_view(await endpoints.rotate_secret(ctx.deps, actor, endpoint_id, grace))


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
    endpoint_id: EndpointId, body: ReplayIn, ctx: Ctx, actor: OrgKey
) -> dict[str, Any]:
    window = replay.ReplayWindow(
        since=time_at(body.since, "$.since"),
        until=time_at(body.until, "$.until"),
        status=body.status,
        missing=body.missing,
    )
    counts = await replay.replay_endpoint(ctx.deps, actor, endpoint_id, window)
    return {"replayed": counts.replayed, "missing": counts.missing, "skipped": counts.skipped}


__all__ = ["router"]


Sequence = Annotated[int, Query(ge=0, le=2**62, description="a sequence number")]


@router.get(
    "/{endpoint_id}/ledger",
    summary="what the endpoint is owed, in sequence order",
    description=(
        "The endpoint's deliveries numbered after `after` (X-Tidings-Sequence), oldest first: "
        "sequence, event id, type, subject and the delivery's status. Skipped deliveries were "
        "never owed; pending, held and queued ones are on their way. Page with `nextAfter`."
    ),
)
async def get_ledger(
    endpoint_id: EndpointId,
    ctx: Ctx,
    actor: OrgKey,
    after: Sequence = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    page = await ledger.ledger(ctx.deps, actor, endpoint_id, after=after, limit=limit)
    return page.to_wire()


@router.get(
    "/{endpoint_id}/digest",
    summary="count and digest of a range of the endpoint's sequence numbers",
    description=(
        "For the deliveries numbered `from` to `to` (both included) that are not skipped: how "
        "many, and an order-independent hash of their event ids (the receiver SDK's "
        "`event_ids_digest`), so a receiver compares a day in one request. At most "
        f"{ledger.MAX_DIGEST_RANGE:,} numbers."
    ),
)
async def get_digest(
    endpoint_id: EndpointId,
    ctx: Ctx,
    actor: OrgKey,
    first: Annotated[int, Query(alias="from", ge=1, le=2**62, description="first number")],
    last: Annotated[int, Query(alias="to", ge=1, le=2**62, description="last number")],
) -> dict[str, Any]:
    return (await ledger.digest(ctx.deps, actor, endpoint_id, first, last)).to_wire()
