"""Delivery history (contract section 7): an organization's deliveries, newest first, one
delivery with its attempts, and one event with every delivery of it. Organization keys; a
foreign or unknown id is a 404 and lists never hold another organization's rows.

A list is filtered by a `DeliveryFilter` (endpoint, event, status, creation time), re-exported
here so a face needs nothing from the store."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.auth import Actor, require_organization
from tidings.errors import NotFoundError
from tidings.models import Attempt, Delivery, Event, Page
from tidings.services.deps import Deps
from tidings.services.paging import bad_cursor, check_page
from tidings.store.base import DeliveryFilter

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
    "DeliveryFilter",
    "DeliveryWithAttempts",
    "EventWithDeliveries",
    "get_delivery",
    "get_event",
    "list_deliveries",
]
