"""Endpoints of an organization (contract sections 5-7): register, list, read, change, delete,
pause, resume, and their signing secrets (read, rotate with a grace period).

Every operation needs an organization key and is scoped to the actor's organization: another
organization's endpoint is a 404, exactly like one that does not exist. The configuration rules
are those of `tidings.services.endpoint_rules`, checked here for every face.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Final

from tidings.auth import Actor, require_organization, require_writer
from tidings.config import SECRET_ROTATION_GRACE_SECONDS
from tidings.endpoint_health import HEALTH_WINDOW_SECONDS, Health, hour_of, summarize
from tidings.errors import NotFoundError, ValidationFailed
from tidings.filters import FilterIssue, check_filter, compile_filter
from tidings.ids import new_id
from tidings.models import (
    DEFAULT_SOURCES,
    Endpoint,
    EndpointSecret,
    EndpointStatus,
    EventFilter,
    Ordering,
    Page,
)
from tidings.policies import PAUSE_BY_HAND
from tidings.services import audit
from tidings.services.deps import Deps
from tidings.services.endpoint_rules import check_endpoint, dedupe
from tidings.services.paging import check_page
from tidings.signing import generate_secret, secret_fits_format
from tidings.store.base import NotFound
from tidings.store.types import EndpointHour

MAX_GRACE_SECONDS = 30 * 24 * 3600


class Unset(Enum):
    """A patch field not given (None means "given, as null")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class EndpointInput:
    """A new endpoint as a form or a request gives it (contract section 7's fields)."""

    url: str
    event_types: Sequence[str]
    partner_ids: Sequence[str] | None = None
    accepted_schema_versions: Sequence[int] | None = None
    sources: Sequence[str] = DEFAULT_SOURCES
    format: str | None = None  # None: the native format of the subscribed catalog
    description: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit_per_second: float | None = None
    trace_context: bool = False
    filter: Mapping[str, Any] | None = None  # as given: checked by `tidings.filters`
    record_filtered: bool = False
    ordering: str = Ordering.NONE.value  # issue 25


@dataclass(frozen=True, slots=True)
class EndpointPatch:
    """Only the fields given change. `None` resets the nullable ones (partner_ids,
    accepted_schema_versions, description, rate_limit_per_second) to their default; it is
    refused for url, event_types, sources and headers. A `format` of None keeps the current
    one."""

    url: str | Unset | None = UNSET
    event_types: Sequence[str] | Unset | None = UNSET
    partner_ids: Sequence[str] | Unset | None = UNSET
    accepted_schema_versions: Sequence[int] | Unset | None = UNSET
    sources: Sequence[str] | Unset | None = UNSET
    format: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    headers: Mapping[str, str] | Unset | None = UNSET
    rate_limit_per_second: float | Unset | None = UNSET
    trace_context: bool | Unset | None = UNSET
    filter: Mapping[str, Any] | Unset | None = UNSET  # None: no filter
    record_filtered: bool | Unset | None = UNSET
    ordering: str | Unset | None = UNSET  # None: back to the default, "none"


@dataclass(frozen=True, slots=True)
class EndpointUpdate:
    """A changed endpoint, and its new secret when the change of format needed one (shown
    once, like a new endpoint's)."""

    endpoint: Endpoint
    new_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    endpoint: Endpoint
    released: int  # held deliveries now on their way


@dataclass(frozen=True, slots=True)
class SigningSecrets:
    """`current` signs from now on; `signing` is every secret that signs now: the current one
    first, then those still in a rotation's grace period, latest expiry first."""

    current: str | None
    signing: list[EndpointSecret]


def _tuple(values: Sequence[Any] | None) -> tuple[Any, ...] | None:
    """As given (validation paths index the caller's own lists); `_normalized` dedupes."""
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


async def _owned(deps: Deps, organization_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await deps.store.get_endpoint(organization_id, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"no endpoint {endpoint_id}")
    return endpoint


async def create_endpoint(deps: Deps, actor: Actor, given: EndpointInput) -> Endpoint:
    """The new endpoint, with its one secret (to be shown once)."""
    organization_id = require_organization(actor)
    now = deps.clock()
    candidate = Endpoint(
        id=new_id("ep", now),
        organization_id=organization_id,
        url=given.url,
        event_types=tuple(given.event_types),
        format="standard",
        secrets=(),
        partner_ids=_tuple(given.partner_ids),
        accepted_schema_versions=_tuple(given.accepted_schema_versions),
        sources=tuple(given.sources),
        description=given.description,
        headers=dict(given.headers),
        rate_limit_per_second=given.rate_limit_per_second,
        trace_context=given.trace_context,
        record_filtered=given.record_filtered,
        ordering=given.ordering,
        created_at=now,
        updated_at=now,
    )
    compiled, filter_problems = _filter(given.filter)
    candidate = replace(candidate, filter=compiled)
    fmt = await check_endpoint(
        deps,
        candidate,
        requested_format=given.format,
        url_changed=True,
        filter_problems=filter_problems,
    )
    secret = EndpointSecret(secret=generate_secret(fmt), created_at=now)
    endpoint = _normalized(replace(candidate, format=fmt, secrets=(secret,)))
    fields = _audited(endpoint)
    entry = audit.entry(deps, actor, "endpoint.create", endpoint.id, fields, now=now)
    await deps.store.create_endpoint(endpoint, entry)
    return endpoint


async def list_endpoints(
    deps: Deps, actor: Actor, *, limit: int, cursor: str | None
) -> Page[Endpoint]:
    """Not deleted, oldest first."""
    organization_id = require_organization(actor)
    check_page(limit)
    try:
        return await deps.store.list_endpoints(organization_id, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ValidationFailed(
            "query.cursor: not a cursor this API made",
            details=[{"path": "query.cursor", "message": str(exc)}],
        ) from exc


async def get_endpoint(deps: Deps, actor: Actor, endpoint_id: str) -> Endpoint:
    return await _owned(deps, require_organization(actor), endpoint_id)


# The configuration fields an audit entry names when they change (headers as "(changed)": they
# may carry credentials); secrets are named, never shown.
_AUDITED = (
    ("url", "url"),
    ("event_types", "eventTypes"),
    ("format", "format"),
    ("partner_ids", "partnerIds"),
    ("accepted_schema_versions", "acceptedSchemaVersions"),
    ("sources", "sources"),
    ("description", "description"),
    ("headers", "headers"),
    ("rate_limit_per_second", "rateLimitPerSecond"),
    ("trace_context", "traceContext"),
    ("filter", "filter"),
    ("record_filtered", "recordFiltered"),
    ("ordering", "ordering"),
)


def _plain(value: Any) -> Any:
    if isinstance(value, EventFilter):
        return value.spec
    return list(value) if isinstance(value, tuple) else value


def _filter(spec: Mapping[str, Any] | None) -> tuple[EventFilter | None, list[FilterIssue]]:
    """The filter as given, compiled, or the problems of its shape (answered with the rest)."""
    if spec is None:
        return None, []
    problems = check_filter(spec)
    return (None, problems) if problems else (compile_filter(spec), [])


def _audited(endpoint: Endpoint, before: Endpoint | None = None) -> dict[str, Any]:
    """The fields of `endpoint` that differ from `before` (every field for a new one), by
    their API names."""
    changes = {
        path: _plain(getattr(endpoint, name))
        for name, path in _AUDITED
        if before is None or getattr(endpoint, name) != getattr(before, name)
    }
    if before is not None and endpoint.secrets != before.secrets:
        changes["secrets"] = audit.CHANGED
    return changes


_NOT_NULL = (("url", "url"), ("event_types", "eventTypes"), ("sources", "sources"))


def _resettable(patch: EndpointPatch) -> dict[str, Any]:
    """The fields a null resets to their default, as they would be stored (UNSET: not given)."""
    as_stored: dict[str, Callable[[Any], Any]] = {
        "partner_ids": _tuple,
        "accepted_schema_versions": _tuple,
        "description": lambda v: v,
        "rate_limit_per_second": lambda v: v,
        "trace_context": bool,  # null: back to the default
        "record_filtered": bool,
        "ordering": lambda v: v or Ordering.NONE.value,
    }
    return {
        name: value if isinstance(value := getattr(patch, name), Unset) else convert(value)
        for name, convert in as_stored.items()
    }


def _patched(
    current: Endpoint, patch: EndpointPatch, now: float
) -> tuple[Endpoint, list[FilterIssue]]:
    for name, path in (*_NOT_NULL, ("headers", "headers")):
        if getattr(patch, name) is None:
            raise ValidationFailed.at(f"$.{path}", "must not be null")
    changes: dict[str, Any] = {"updated_at": now}
    if isinstance(patch.url, str):
        changes["url"] = patch.url
    if not isinstance(patch.event_types, Unset | None):
        changes["event_types"] = tuple(patch.event_types)
    if not isinstance(patch.sources, Unset | None):
        changes["sources"] = tuple(patch.sources)
    if not isinstance(patch.headers, Unset | None):
        changes["headers"] = dict(patch.headers)
    for name, value in _resettable(patch).items():
        if not isinstance(value, Unset):
            changes[name] = value
    problems: list[FilterIssue] = []
    if not isinstance(patch.filter, Unset):
        changes["filter"], problems = _filter(patch.filter)
    return replace(current, **changes), problems


async def update_endpoint(
    deps: Deps, actor: Actor, endpoint_id: str, patch: EndpointPatch
) -> EndpointUpdate:
    """The format stays as it is unless given (it must fit the new event types). When it
    changes and the current secret does not fit it (e.g. to `standard`, which needs a `whsec_`
    secret), a new secret replaces every old one at once."""
    organization_id = require_organization(actor)
    current = await _owned(deps, organization_id, endpoint_id)
    now = deps.clock()
    candidate, filter_problems = _patched(current, patch, now)
    requested = patch.format if isinstance(patch.format, str) else current.format
    fmt = await check_endpoint(
        deps,
        candidate,
        requested_format=requested,
        url_changed=candidate.url != current.url,
        filter_problems=filter_problems,
    )
    new_secret: str | None = None
    secrets = current.secrets
    if fmt != current.format and not all(secret_fits_format(s.secret, fmt) for s in secrets):
        new_secret = generate_secret(fmt)
        secrets = (EndpointSecret(secret=new_secret, created_at=now),)
    endpoint = _normalized(replace(candidate, format=fmt, secrets=secrets))
    entry = audit.entry(
        deps, actor, "endpoint.update", endpoint_id, _audited(endpoint, current), now=now
    )
    try:
        await deps.store.update_endpoint(endpoint, entry)
    except NotFound as exc:
        raise NotFoundError(f"no endpoint {endpoint_id}") from exc
    return EndpointUpdate(await _owned(deps, organization_id, endpoint_id), new_secret)


async def delete_endpoint(deps: Deps, actor: Actor, endpoint_id: str) -> None:
    """Its history stays readable; its pending and held deliveries become failed."""
    organization_id = require_organization(actor)
    now = deps.clock()
    entry = audit.entry(deps, actor, "endpoint.delete", endpoint_id, now=now)
    if not await deps.store.delete_endpoint(organization_id, endpoint_id, now, entry):
        raise NotFoundError(f"no endpoint {endpoint_id}")


async def pause_endpoint(deps: Deps, actor: Actor, endpoint_id: str) -> Endpoint:
    """No attempts while paused; its deliveries are held, not lost."""
    organization_id = require_organization(actor)
    await _owned(deps, organization_id, endpoint_id)
    now = deps.clock()
    entry = audit.entry(deps, actor, "endpoint.pause", endpoint_id, now=now)
    await deps.store.pause_endpoint(organization_id, endpoint_id, PAUSE_BY_HAND, now, entry)
    return await _owned(deps, organization_id, endpoint_id)


async def resume_endpoint(deps: Deps, actor: Actor, endpoint_id: str) -> Resumed:
    """Active again; what was held goes out now."""
    organization_id = require_organization(actor)
    await _owned(deps, organization_id, endpoint_id)
    now = deps.clock()
    entry = audit.entry(deps, actor, "endpoint.resume", endpoint_id, now=now)
    released = await deps.store.resume_endpoint(organization_id, endpoint_id, now, entry)
    return Resumed(await _owned(deps, organization_id, endpoint_id), released)


def _signing(endpoint: Endpoint, now: float) -> SigningSecrets:
    valid = [s for s in endpoint.secrets if s.signs_at(now)]
    valid.sort(key=lambda s: (s.expires_at is not None, -(s.expires_at or 0.0)))
    current = next((s.secret for s in valid if s.expires_at is None), None)
    return SigningSecrets(current=current, signing=valid)


async def read_secrets(deps: Deps, actor: Actor, endpoint_id: str) -> SigningSecrets:
    """A sensitive read, not a read key's (its holder could sign as tidings): recorded in the
    audit trail before the secrets are answered."""
    endpoint = await _owned(deps, require_writer(actor), endpoint_id)
    await audit.record(deps, actor, "endpoint.secret_read", endpoint_id)
    return _signing(endpoint, deps.clock())


async def rotate_secret(
    deps: Deps,
    actor: Actor,
    endpoint_id: str,
    grace_seconds: float = SECRET_ROTATION_GRACE_SECONDS,
) -> SigningSecrets:
    """A new secret signs from now on; the previous ones keep signing too (one signature per
    secret) for `grace_seconds`, never longer than they already would. Secrets past their
    grace are dropped."""
    organization_id = require_organization(actor)
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationFailed.at("$.graceSeconds", f"must be 0 to {MAX_GRACE_SECONDS} seconds")
    endpoint = await _owned(deps, organization_id, endpoint_id)
    now = deps.clock()
    rotated = (old.rotated_out(now, grace_seconds) for old in endpoint.secrets)
    kept = [k for k in rotated if k is not None]
    new = EndpointSecret(secret=generate_secret(endpoint.format), created_at=now)
    entry = audit.entry(
        deps, actor, "endpoint.secret_rotate", endpoint_id, {"graceSeconds": grace_seconds}, now=now
    )
    try:
        await deps.store.set_endpoint_secrets(
            organization_id, endpoint_id, [new, *kept], now, entry
        )
    except NotFound as exc:
        raise NotFoundError(f"no endpoint {endpoint_id}") from exc
    return _signing(await _owned(deps, organization_id, endpoint_id), now)


async def health_of(deps: Deps, actor: Actor, shown: Sequence[Endpoint]) -> dict[str, Health]:
    """The health at a glance of endpoints the actor already read (a page of them): the last
    24 hours' attempts, success rate, p50/p95 durations and last attempt as the workers
    recorded them, and held deliveries (paused endpoints)."""
    organization_id = require_organization(actor)
    ids = [e.id for e in shown if e.organization_id == organization_id]
    now = deps.clock()
    hours = await deps.store.endpoint_stats(
        organization_id, ids, hour_of(now - HEALTH_WINDOW_SECONDS)
    )
    paused = [e.id for e in shown if e.id in ids and e.status == EndpointStatus.PAUSED]
    held = await deps.store.held_counts(organization_id, paused)
    by_endpoint: dict[str, list[EndpointHour]] = {i: [] for i in ids}
    for h in hours:
        by_endpoint[h.endpoint_id].append(h)
    return {i: summarize(by_endpoint[i], now, held.get(i, 0)) for i in ids}
