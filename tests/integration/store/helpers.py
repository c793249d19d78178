"""Builders for store tests: small records with sensible defaults."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from tidings.ids import new_id
from tidings.models import (
    ApiKey,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    Endpoint,
    EndpointSecret,
    Event,
    KeyKind,
    NewDelivery,
    Organization,
)
from tidings.store import base as store_base
from tidings.store.base import ProjectionUpdate, PublishItem, Store
from tidings.store.sql import load_migrations

T0 = 1_767_225_600.0
_n = itertools.count(1)


async def make_org(store: Store, org_id: str | None = None) -> str:
    org_id = org_id or new_id("org")
    key = ApiKey(id=new_id("key"), kind=KeyKind.ORGANIZATION, organization_id=org_id, created_at=T0)
    await store.create_organization(
        Organization(id=org_id, name=f"Org {org_id}", created_at=T0), key, f"hash-{key.id}"
    )
    return org_id


def endpoint(org_id: str, **overrides: Any) -> Endpoint:
    base = Endpoint(
        id=new_id("ep"),
        organization_id=org_id,
        url="https://example.com/hook",
        event_types=("order.*",),
        format="standard",
        secrets=(EndpointSecret(secret="whsec_abc", created_at=T0),),
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **overrides)


async def make_endpoint(store: Store, org_id: str, **overrides: Any) -> Endpoint:
    ep = endpoint(org_id, **overrides)
    await store.create_endpoint(ep)
    return ep


def event(org_id: str, **overrides: Any) -> Event:
    base = Event(
        id=new_id("evt"),
        organization_id=org_id,
        type="order.created",
        schema_version=1,
        source="SYSTEM",
        created_at=T0 + next(_n) / 1000,
        data={"orderId": "o-1", "amount": 12.5},
        attributes={"region": "eu"},
    )
    return replace(base, **overrides)


def pending(endpoint_id: str, **overrides: Any) -> NewDelivery:
    base = NewDelivery(
        id=new_id("dlv"), endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, schema_version=1
    )
    return replace(base, **overrides)


def item(
    ev: Event, deliveries: list[NewDelivery], projections: tuple[ProjectionUpdate, ...] = ()
) -> PublishItem:
    return PublishItem(event=ev, deliveries=deliveries, projections=projections)


def outcome(
    delivery_id: str,
    endpoint_id: str,
    status: DeliveryStatus,
    *,
    success: bool,
    at: float,
    number: int = 1,
    next_attempt_at: float | None = None,
    code: int | None = None,
    error: str | None = None,
) -> AttemptOutcome:
    return AttemptOutcome(
        delivery_id=delivery_id,
        endpoint_id=endpoint_id,
        attempt=Attempt(
            delivery_id=delivery_id,
            number=number,
            started_at=at,
            duration_ms=12.0,
            status_code=code,
            error=error,
            response_excerpt="ok" if success else "nope",
        ),
        status=status,
        next_attempt_at=next_attempt_at,
        success=success,
        last_status_code=code,
        last_error=error,
    )


async def publish_one(
    store: Store, org_id: str, endpoint_ids: list[str], *, now: float = T0, **event_fields: Any
) -> tuple[Event, list[str]]:
    """An event with one pending delivery per endpoint; answers the stored event and the ids."""
    deliveries = [pending(e) for e in endpoint_ids]
    [result] = await store.publish([item(event(org_id, **event_fields), deliveries)], now=now)
    assert result.created
    return result.event, [d.id for d in deliveries]


async def migrate_before(store: Store, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrate `store` as a release before migration `version` would have: every earlier one."""
    with monkeypatch.context() as m:
        m.setattr(
            store_base,
            "load_migrations",
            lambda dialect: [x for x in load_migrations(dialect) if x.version < version],
        )
        assert version not in await store.migrate()
