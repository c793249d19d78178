"""Builders for the endpoint, delivery and replay API tests: register endpoints over HTTP, store
events with their deliveries planned by the real subscription rules (store.publish, as the
publisher does), and record attempts the way the worker does (claim_due + record_outcomes)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.integration.api.conftest import Api, Org
from tidings.ids import new_id
from tidings.models import Attempt, AttemptOutcome, ClaimedDelivery, DeliveryStatus, Event
from tidings.store.base import PublishItem
from tidings.subscriptions import plan_deliveries

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_n = itertools.count(1)


async def make_endpoint(api: Api, org: Org, **fields: Any) -> dict[str, Any]:
    body = {"url": "https://hooks.example.com/in", "eventTypes": ["compliance.*"], **fields}
    r = await api.client.post("/v1/endpoints", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def example(api: Api, type_name: str, version: int | None = None) -> tuple[int, Any]:
    event_type = api.catalog.get(type_name)
    assert event_type is not None
    v = event_type.latest_version if version is None else version
    return v, event_type.versions[v].examples[0]


async def publish(
    api: Api,
    org: Org,
    type_name: str = "compliance.status_changed",
    *,
    at: float = T0,
    source: str = "WEB_APP",
    partner: str | None = None,
    version: int | None = None,
    event_id: str | None = None,
) -> tuple[Event, list[str]]:
    """Store one event created at `at`, with the deliveries the subscription rules plan for the
    organization's endpoints at that moment. Answers the event and its delivery ids."""
    schema_version, data = example(api, type_name, version)
    event = Event(
        id=event_id or new_id("evt", at),
        organization_id=org.id,
        type=type_name,
        schema_version=schema_version,
        source=source,
        created_at=at + next(_n) / 1000,
        data=data,
        partner_uuid=partner,
        attributes={},
    )
    endpoints = await api.store.list_subscribed_endpoints(org.id)
    planned = plan_deliveries(event, endpoints, api.catalog, lambda p: new_id(p, at))
    [result] = await api.store.publish([PublishItem(event, planned)], now=event.created_at)
    assert result.created
    return result.event, [d.id for d in planned]


def worker_outcome(
    c: ClaimedDelivery,
    now: float,
    status_code: int | None,
    *,
    final: bool = False,
    error: str | None = None,
) -> AttemptOutcome:
    """One attempt's outcome as a worker would record it: 2xx succeeds, anything else is
    retried in 60 s, or fails for good when `final`."""
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        status = DeliveryStatus.SUCCEEDED
    else:
        status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
    return AttemptOutcome(
        delivery_id=c.delivery.id,
        endpoint_id=c.endpoint.id,
        attempt=Attempt(
            delivery_id=c.delivery.id,
            number=c.delivery.attempt_count + 1,
            started_at=now,
            duration_ms=42.5,
            status_code=status_code,
            error=error,
            response_excerpt="accepted" if ok else "try later",
            series=c.delivery.series,
        ),
        status=status,
        next_attempt_at=None if ok or final else now + 60.0,
        success=ok,
        last_status_code=status_code,
        last_error=error,
    )


async def attempt_all(
    api: Api,
    *,
    now: float,
    status_code: int | None,
    final: bool = False,
    error: str | None = None,
) -> list[str]:
    """One attempt for every due delivery, as a worker would record it: 2xx succeeds, anything
    else is retried in 60 s, or fails for good when `final`. Answers the delivery ids."""
    claimed = await api.store.claim_due("wrk_test", now, 60.0, 1000)
    outcomes = [worker_outcome(c, now, status_code, final=final, error=error) for c in claimed]
    await api.store.record_outcomes("wrk_test", outcomes, now)
    return [c.delivery.id for c in claimed]
