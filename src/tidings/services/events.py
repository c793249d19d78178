"""Events (contract sections 2 and 7): publishing one envelope or a batch (platform keys), an
organization's feed, oldest first after a cursor, filtered by type patterns and by the
platform's correlation id (organization keys), and the catalogs (any key).

Publishing itself (validation, planning, storing) is `tidings.publishing.Publisher`, the one
entry point that the worker's meta events use too; this room adds who may call it and the
shape of a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidings.auth import Actor, require_organization, require_platform
from tidings.config import MAX_BATCH_EVENTS
from tidings.errors import ApiError, NotFoundError, ValidationFailed
from tidings.models import Event, Page
from tidings.publishing import MAX_ID_CHARS
from tidings.services.deps import Deps
from tidings.services.paging import check_page
from tidings.store.base import PublishResult, TypeFilter
from tidings.subscriptions import to_type_filter, validate_pattern


async def publish_event(
    deps: Deps, actor: Actor, envelope: Any, *, idempotency_key: str | None = None
) -> PublishResult:
    """The stored event; `created` is False for an idempotent repeat."""
    require_platform(actor)
    return await deps.publisher.publish(envelope, idempotency_key=idempotency_key)


async def publish_batch(deps: Deps, actor: Actor, body: Any) -> list[PublishResult | ApiError]:
    """`body` is `{"events": [envelope, ...]}` with 1 to MAX_BATCH_EVENTS envelopes; each is
    answered on its own, in order (a result or its error)."""
    require_platform(actor)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValidationFailed.at("$.events", "a list of event envelopes is required")
    envelopes = body["events"]
    if not envelopes or len(envelopes) > MAX_BATCH_EVENTS:
        raise ValidationFailed.at("$.events", f"must hold 1 to {MAX_BATCH_EVENTS} events")
    extra = [k for k in body if k != "events"]
    if extra:
        raise ValidationFailed.at(f"$.{extra[0]}", "unknown field")
    return await deps.publisher.publish_batch(envelopes)


@dataclass(frozen=True, slots=True)
class Feed:
    """One page of an organization's feed, as asked: made by `feed`."""

    organization_id: str
    after: str | None
    types: TypeFilter
    types_key: str  # the patterns, sorted and joined: the same page asked alike has one key
    limit: int
    correlation_id: str | None = None  # only the events carrying it (self-echo filtering)


def feed(
    actor: Actor,
    *,
    after: str | None,
    types: str | None,
    limit: int,
    correlation_id: str | None = None,
) -> Feed:
    """`types` is comma-separated patterns (`kyc.*,compliance.status_changed`); with
    `correlation_id`, only the events that carry it."""
    organization_id = require_organization(actor)
    check_page(limit)
    if correlation_id is not None and not 0 < len(correlation_id) <= MAX_ID_CHARS:
        raise ValidationFailed.at("query.correlationId", f"must be 1 to {MAX_ID_CHARS} characters")
    if types is None or not types.strip():
        return Feed(organization_id, after, TypeFilter(), "", limit, correlation_id)
    patterns = sorted({p.strip() for p in types.split(",") if p.strip()})
    for pattern in patterns:
        problem = validate_pattern(pattern)
        if problem is not None:
            raise ValidationFailed.at("query.types", f"{pattern!r}: {problem}")
    return Feed(
        organization_id, after, to_type_filter(patterns), ",".join(patterns), limit, correlation_id
    )


async def feed_version(deps: Deps, page: Feed) -> tuple[object, ...]:
    """What identifies the page's content without loading it: equal while nothing in it
    changed (the API's ETag)."""
    try:
        count, last_seq, erasures = await deps.store.events_page_fingerprint(
            page.organization_id,
            after=page.after,
            types=page.types,
            limit=page.limit,
            correlation_id=page.correlation_id,
        )
    except ValueError:
        raise _bad_after() from None
    return (
        "events", page.organization_id, page.after, page.types_key, page.limit,
        page.correlation_id, count, last_seq, erasures,
    )  # fmt: skip


async def feed_page(deps: Deps, page: Feed) -> Page[Event]:
    try:
        return await deps.store.list_events(
            page.organization_id,
            after=page.after,
            types=page.types,
            limit=page.limit,
            correlation_id=page.correlation_id,
        )
    except ValueError:
        raise _bad_after() from None


def _bad_after() -> ValidationFailed:
    return ValidationFailed.at("query.after", "not a cursor this API made")


def event_types(deps: Deps, actor: Actor) -> list[dict[str, Any]]:
    """Every type of every catalog with its versions, schemas and examples (any key)."""
    return deps.catalog.to_json()


def event_type(deps: Deps, actor: Actor, type_name: str) -> dict[str, Any]:
    """One type with its versions, schemas, examples and, for failures, its error codes."""
    item = deps.catalog.type_json(type_name)
    if item is None:
        raise NotFoundError(f"no event type {type_name} in any catalog")
    return item


def error_codes(deps: Deps, actor: Actor, type_name: str | None = None) -> list[dict[str, Any]]:
    """The error-code reference (any key); with `type_name`, the codes that type carries (an
    unknown type is a 422 on `query.type`)."""
    if type_name is not None and deps.catalog.get(type_name) is None:
        raise ValidationFailed.at("query.type", f"no event type {type_name} in any catalog")
    return [c.to_json() for c in deps.catalog.error_codes(type_name)]


def warnings(deps: Deps, event: Event) -> list[dict[str, str]]:
    """What the catalog flags in a stored event (an error code its reference does not know)."""
    return deps.catalog.warnings(event.type, event.data)
