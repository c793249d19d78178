"""The receiver SDK against deliveries made by the real engine (issue 5 item 5): the real
Publisher and Worker deliver in all three wire formats to a receiver on 127.0.0.1 that verifies
each request with `tidings.receiver`, during a secret rotation, and parses the typed data."""

from __future__ import annotations

import pytest

from tests.integration.delivery.helpers import (
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    running_worker,
)
from tidings.clock import system_clock
from tidings.models import EndpointSecret
from tidings.publishing import Publisher
from tidings.receiver import Verifier, WebhookVerificationError, parse_data
from tidings.signing import generate_secret
from tidings.store.base import Store

DLT_ATTRS = {
    "owner_id": "own_1",
    "owner_type": "person",
    "external_id": "ext_1",
    "entitlement_trigger_id": "trg_1",
    "entitlement_id": "ent_1",
}


async def test_sdk_verifies_and_parses_real_deliveries_in_every_format(store: Store) -> None:
    catalog = real_catalog()
    publisher = Publisher(store, catalog)
    org = await new_org(store)
    now = system_clock()
    secrets: dict[str, tuple[str, str]] = {}
    async with running_receiver() as rx:
        endpoints = {}
        for fmt, types in (
            ("novatrade", ("compliance.*",)),
            ("dlt", ("onboarding.*",)),
            ("standard", ("compliance.*", "onboarding.*")),
        ):
            old, new = generate_secret(fmt), generate_secret(fmt)
            secrets[fmt] = (old, new)
            # mid-rotation: the new secret first, the old one still in its grace period
            endpoints[fmt] = await new_endpoint(
                store,
                org,
                rx.url(f"/{fmt}"),
                event_types=types,
                fmt=fmt,
                secrets=(
                    EndpointSecret(new, now - 1),
                    EndpointSecret(old, now - 100, expires_at=now + 3600),
                ),
            )
        async with running_worker(store, catalog, publisher):
            status = await publisher.publish(
                {
                    "type": "compliance.status_changed",
                    "schemaVersion": 1,
                    "source": "WEB_APP",
                    "organizationUuid": org,
                    "correlationId": "req-web-42",  # the web app's request (issue 26 item 7)
                    "data": {"orderId": "o-1", "previousStatus": "INCOMPLETE", "status": "VALID"},
                }
            )
            idv = await publisher.publish(
                {
                    "type": "onboarding.failedIDV",
                    "schemaVersion": 1,
                    "source": "SYSTEM",
                    "organizationUuid": org,
                    "attributes": DLT_ATTRS,
                    "data": {"status": "failed", "messages": []},
                }
            )
            await rx.wait_for(lambda: len(rx.received) >= 4, what="four deliveries")

    by_path = {fmt: rx.at(f"/{fmt}") for fmt in secrets}
    assert [len(by_path[f]) for f in ("novatrade", "dlt", "standard")] == [1, 1, 2]
    for fmt, requests in by_path.items():
        old, new = secrets[fmt]
        for request in requests:
            # a receiver that knows only the old secret, or only the new one, accepts it
            for known in ([old], [new]):
                event = Verifier(fmt, known).verify_and_parse(request.body, request.headers)
                assert event.id in (status.event.id, idv.event.id)
                assert event.format == fmt
                assert event.delivery_id is not None and event.delivery_id.startswith("dlv_")
                assert event.attempt == 1
                # the platform's request id in every format; None for the event without one
                expected = "req-web-42" if event.id == status.event.id else None
                assert event.correlation_id == expected
            # a stranger's secret or a changed body is refused with a reason
            with pytest.raises(WebhookVerificationError):
                Verifier(fmt, [generate_secret(fmt)]).verify_and_parse(
                    request.body, request.headers
                )
            with pytest.raises(WebhookVerificationError):
                Verifier(fmt, [new]).verify_and_parse(request.body + b" ", request.headers)

    [nova] = by_path["novatrade"]
    event = Verifier("novatrade", [secrets["novatrade"][1]]).verify_and_parse(
        nova.body, nova.headers
    )
    typed = parse_data(event.type, event.schema_version, event.data)
    assert typed is not None and typed.order_id == "o-1"  # type: ignore[attr-defined]
    [dlt] = by_path["dlt"]
    event = Verifier("dlt", [secrets["dlt"][0]]).verify_and_parse(dlt.body, dlt.headers)
    assert event.type == "onboarding.failedIDV"
    assert event.id == idv.event.id
    assert event.attributes["owner_id"] == "own_1"
