"""Delivery history (contract section 7): an organization's deliveries, newest first, one
delivery with its attempts, and one event with every delivery of it. Organization keys; a
foreign or unknown id is a 404 and lists never hold another organization's rows.

A list is filtered by a `DeliveryFilter` (endpoint, event, status, creation time, event type
patterns), re-exported here so a face needs nothing from the store.

`delivery_detail` adds what a person looking at one delivery needs (the console's delivery
page): its event, its endpoint, and the request tidings sends for it, rebuilt by the same pure
functions the worker uses (`tidings.formats`): the body byte for byte, the headers with the
signature values left out (they are computed at each attempt, with the endpoint's secret, and
kept nowhere)."""

from __future__ import annotations

from dataclasses import dataclass

from tidings import formats
from tidings.auth import Actor, require_organization
from tidings.errors import NotFoundError
from tidings.models import Attempt, Delivery, Endpoint, Event, Page
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import DeliveryFilter, TypeFilter

EVENT_DELIVERIES_PAGE = 500


@dataclass(frozen=True, slots=True)
class DeliveryWithAttempts:
    delivery: Delivery
    attempts: list[Attempt]  # oldest first


@dataclass(frozen=True, slots=True)
class EventWithDeliveries:
    event: Event
    deliveries: list[Delivery]  # newest first


async def list_deliveries(
    deps: Deps, actor: Actor, flt: DeliveryFilter, *, limit: int, cursor: str | None
) -> Page[Delivery]:
    organization_id = require_organization(actor)
    check_page(limit)
    try:
        return await deps.store.list_deliveries(organization_id, flt, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise bad_cursor() from exc


async def get_delivery(deps: Deps, actor: Actor, delivery_id: str) -> DeliveryWithAttempts:
    organization_id = require_organization(actor)
    delivery = await deps.store.get_delivery(organization_id, delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    attempts = await deps.store.list_attempts(organization_id, delivery_id)
    return DeliveryWithAttempts(delivery, attempts)


# Header values that depend on the endpoint's secret: shown as this, never computed for a page.
SIGNATURE_HEADERS = frozenset({"x-novatrade-signature", "x-dlt-signature", "webhook-signature"})
SIGNATURE_SHOWN = "(signed at each attempt with the endpoint's secret; not kept)"
# Secrets of the right shape per format to rebuild the headers with; their signatures are
# replaced by SIGNATURE_SHOWN before anyone sees them.
_PLACEHOLDER_SECRETS = {
    "standard": "whsec_" + "A" * 44,
    "novatrade": "ntsec_placeholder",
    "dlt": "dltsec_placeholder",
}


@dataclass(frozen=True, slots=True)
class SentRequest:
    """The request of a delivery's attempt: `body` as sent (None with `problem` when it cannot
    be rebuilt, as the worker would record a failed attempt), headers in the order sent."""

    body: str | None
    headers: dict[str, str]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: Delivery
    attempts: list[Attempt]  # oldest first
    event: Event | None  # None once retention removed it
    endpoint: Endpoint | None  # deleted endpoints included; None if it is gone
    request: SentRequest


def sent_request(
    deps: Deps, delivery: Delivery, event: Event, endpoint: Endpoint, attempt: int, at: float
) -> SentRequest:
    """The body and headers of attempt number `attempt` at time `at`, rendered as the worker
    renders them (`delivery.attempt`), with the endpoint's current format and headers."""
    version = delivery.schema_version or event.schema_version
    try:
        data = event.data
        if version != event.schema_version:
            data = deps.catalog.convert(event.type, event.data, event.schema_version, version)
        body = formats.render_body(endpoint.format, event=event, data=data, schema_version=version)
        headers = formats.sign_headers(
            endpoint.format,
            event=event,
            body=body,
            delivery_id=delivery.id,
            attempt=max(1, attempt),
            secrets=[_PLACEHOLDER_SECRETS.get(endpoint.format, "placeholder")],
            now=at,
            extra_headers=endpoint.headers,
            schema_version=version,
        )
    except ValueError as exc:
        return SentRequest(None, {}, str(exc))
    shown = {
        name: SIGNATURE_SHOWN if name.lower() in SIGNATURE_HEADERS else value
        for name, value in headers.items()
    }
    return SentRequest(body.decode("utf-8", errors="replace"), shown)


async def delivery_detail(deps: Deps, actor: Actor, delivery_id: str) -> DeliveryDetail:
    """One delivery, its attempts, event and endpoint, and the request of its latest attempt
    (or of the next one when none was made yet)."""
    found = await get_delivery(deps, actor, delivery_id)
    delivery = found.delivery
    event = await deps.store.get_event(delivery.organization_id, delivery.event_id)
    endpoint = await deps.store.get_endpoint(
        delivery.organization_id, delivery.endpoint_id, include_deleted=True
    )
    if event is None or endpoint is None:
        missing = "event" if event is None else "endpoint"
        request = SentRequest(None, {}, f"its {missing} is no longer kept")
    else:
        last = found.attempts[-1] if found.attempts else None
        # X-Tidings-Attempt counts within a series (a replay starts again at 1)
        number = (
            sum(1 for a in found.attempts if a.series == last.series)
            if last
            else delivery.attempt_count + 1
        )
        at = last.started_at if last else deps.clock()
        request = sent_request(deps, delivery, event, endpoint, number, at)
    return DeliveryDetail(delivery, found.attempts, event, endpoint, request)


async def events_of(deps: Deps, actor: Actor, event_ids: list[str]) -> dict[str, Event]:
    """The organization's events with these ids (a page of deliveries' events, in one read);
    ids of other organizations or of events no longer kept are left out."""
    organization_id = require_organization(actor)
    return await deps.store.get_events(organization_id, sorted(set(event_ids)))


async def get_event(deps: Deps, actor: Actor, event_id: str) -> EventWithDeliveries:
    organization_id = require_organization(actor)
    event = await deps.store.get_event(organization_id, event_id)
    if event is None:
        raise NotFoundError(f"no event {event_id}")
    deliveries: list[Delivery] = []
    cursor: str | None = None
    flt = DeliveryFilter(event_id=event_id)
    while True:
        page = await deps.store.list_deliveries(
            organization_id, flt, limit=EVENT_DELIVERIES_PAGE, cursor=cursor
        )
        deliveries.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return EventWithDeliveries(event, deliveries)


__all__ = [
    "DeliveryDetail",
    "DeliveryFilter",
    "DeliveryWithAttempts",
    "EventWithDeliveries",
    "SentRequest",
    "TypeFilter",
    "delivery_detail",
    "events_of",
    "get_delivery",
    "get_event",
    "list_deliveries",
    "sent_request",
]
