"""The delivery engine end to end on both backends: a real store, a real worker, a real HTTP
sender and real receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tidings.clock import system_clock
from tidings.models import DeliveryStatus, EndpointSecret, EndpointStatus
from tidings.store.base import DeliveryFilter, Store

from .helpers import (
    StorePublisher,
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    running_worker,
    status_changed,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


V2_DATA = {
    "orderId": "o-1",
    "previousStatus": "INCOMPLETE",
    "status": "VALID",
    "reason": "All export documents received",
    "changedBy": {"kind": "SYSTEM", "id": None},
    "changedAt": "2024-10-29T12:15:42Z",
}


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


async def _answer(status: int, **headers: str) -> web.StreamResponse:
    return web.Response(status=status, text=f"answer {status}", headers=headers)


async def deliveries_of(store: Store, org: str, endpoint_id: str) -> list[object]:
    page = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=endpoint_id), limit=500, cursor=None
    )
    return list(page.items)


async def test_three_formats_signed_with_rotation_and_conversion(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    now = system_clock()
    async with running_receiver() as rx:
        old = EndpointSecret("ntsec_" + "ab" * 32, now - 100, expires_at=now + 3600)
        current = EndpointSecret("ntsec_" + "cd" * 32, now - 10)
        expired = EndpointSecret("ntsec_" + "ef" * 32, now - 999, expires_at=now - 1)
        nova = await new_endpoint(
            store,
            org,
            rx.url("/nova"),
            secrets=(current, old, expired),
            accepted_schema_versions=(1,),
            headers={"X-Custom": "yes"},
        )
        dlt = await new_endpoint(
            store, org, rx.url("/dlt"), event_types=("onboarding.*",), fmt="dlt"
        )
        std = await new_endpoint(store, org, rx.url("/std"), fmt="standard")
        async with running_worker(store, catalog, publisher):
            v2 = status_changed(org, 1)
            v2["schemaVersion"] = 2
            v2["data"] = V2_DATA
            await publisher.publish(v2)
            await publisher.publish(
                {
                    "type": "onboarding.completedIDV",
                    "schemaVersion": 1,
                    "source": "WEB_APP",
                    "organizationUuid": org,
                    "attributes": {"owner_id": "own-1", "owner_type": "person"},
                    "data": {"status": "success", "messages": []},
                }
            )
            await rx.wait_for(lambda: len(rx.received) >= 3, what="three deliveries")

    [n] = rx.at("/nova")
    header = n.headers["X-Novatrade-Signature"]
    parts = header.split(",")
    ts = parts[0].removeprefix("t=")
    sigs = [p.removeprefix("v1=") for p in parts[1:]]
    expected = [_hmac(s.secret.encode(), f"{ts}.".encode() + n.body).hex() for s in (current, old)]
    assert sigs == expected  # both valid secrets sign, the expired one does not
    body = orjson.loads(n.body)
    assert body["schemaVersion"] == 1
    assert body["data"] == {"orderId": "o-1", "previousStatus": "INCOMPLETE", "status": "VALID"}
    assert n.headers["X-Tidings-Attempt"] == "1"
    assert n.headers["X-Tidings-Delivery-Id"].startswith("dlv_")
    assert n.headers["User-Agent"].startswith("tidings/")
    assert n.headers["Content-Type"] == "application/json"
    assert n.headers["X-Custom"] == "yes"

    [d] = rx.at("/dlt")
    secret = dlt.secrets[0].secret
    assert d.headers["X-DLT-Signature"] == base64.b64encode(_hmac(secret.encode(), d.body)).decode()
    dbody = orjson.loads(d.body)
    assert dbody["notification_type"] == "completedIDV"
    assert dbody["owner_id"] == "own-1"

    [s] = rx.at("/std")
    payload = Webhook(std.secrets[0].secret).verify(s.body, s.headers)
    assert payload["type"] == "compliance.status_changed"
    assert payload["data"] == V2_DATA  # the newest version, unconverted

    for ep in (nova, dlt, std):
        [delivery] = await deliveries_of(store, org, ep.id)
        assert delivery.status == DeliveryStatus.SUCCEEDED  # type: ignore[attr-defined]


async def test_retries_until_success(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def flaky(request: web.Request, n: int) -> web.StreamResponse:
            return await _answer(500 if n <= 2 else 200)

        ep = await new_endpoint(store, org, rx.on("/flaky", flaky))
        async with running_worker(store, catalog, publisher):
            await publisher.publish(status_changed(org))

            async def done() -> bool:
                [d] = await deliveries_of(store, org, ep.id)
                return d.status == DeliveryStatus.SUCCEEDED  # type: ignore[attr-defined,no-any-return]

            await wait_until(done, what="success after retries")
    assert [r.headers["X-Tidings-Attempt"] for r in rx.at("/flaky")] == ["1", "2", "3"]
    [delivery] = await deliveries_of(store, org, ep.id)
    attempts = await store.list_attempts(org, delivery.id)  # type: ignore[attr-defined]
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.number for a in attempts] == [1, 2, 3]
    assert attempts[0].response_excerpt == "answer 500"
    assert delivery.attempt_count == 3  # type: ignore[attr-defined]


async def test_retry_after_is_honoured(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def busy(request: web.Request, n: int) -> web.StreamResponse:
            if n == 1:
                return await _answer(429, **{"Retry-After": "1"})
            return await _answer(200)

        ep = await new_endpoint(store, org, rx.on("/busy", busy))
        async with running_worker(store, catalog, publisher):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.at("/busy")) >= 2, what="second attempt")
    first, second = rx.at("/busy")
    # the schedule asks for 0.05 s; the receiver asked for 1 s, which wins
    assert second.at - first.at >= 0.9
    [delivery] = await deliveries_of(store, org, ep.id)
    attempts = await store.list_attempts(org, delivery.id)  # type: ignore[attr-defined]
    assert attempts[1].started_at - attempts[0].started_at >= 0.99


async def test_out_of_attempts_fails_and_raises_terminal_meta(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def broken(request: web.Request, n: int) -> web.StreamResponse:
            return await _answer(500)

        failing = await new_endpoint(store, org, rx.on("/broken", broken))
        observer = await new_endpoint(store, org, rx.url("/observer"), event_types=("webhook.*",))
        async with running_worker(store, catalog, publisher):
            event = await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.at("/observer")) >= 1, what="terminal meta event")
    assert len(rx.at("/broken")) == 4  # schedule of 3 waits = 4 attempts
    [delivery] = await deliveries_of(store, org, failing.id)
    assert delivery.status == DeliveryStatus.FAILED  # type: ignore[attr-defined]
    [meta] = rx.at("/observer")
    body = orjson.loads(meta.body)
    assert body["type"] == "webhook.delivery_failed_terminal"
    assert body["source"] == "SYSTEM"
    assert body["data"]["deliveryId"] == delivery.id  # type: ignore[attr-defined]
    assert body["data"]["eventId"] == event.event.id
    assert body["data"]["endpointId"] == failing.id
    assert body["data"]["attempts"] == 4
    assert body["data"]["lastStatusCode"] == 500
    assert observer.id != failing.id


async def test_auto_pause_holds_and_resume_sends(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    healthy = False
    async with running_receiver() as rx:

        async def down(request: web.Request, n: int) -> web.StreamResponse:
            return await _answer(200 if healthy else 503)

        ep = await new_endpoint(store, org, rx.on("/down", down))
        await new_endpoint(store, org, rx.url("/observer"), event_types=("webhook.*",))
        async with running_worker(
            store, catalog, publisher, pause_after_failures=3, retry_schedule=(0.05,) * 9
        ):
            await publisher.publish(status_changed(org, 1))
            await publisher.publish(status_changed(org, 2))
            await rx.wait_for(lambda: len(rx.at("/observer")) >= 1, what="pause meta event")
            endpoint = await store.get_endpoint(org, ep.id)
            assert endpoint is not None
            assert endpoint.status == EndpointStatus.PAUSED

            async def held() -> bool:
                items = await deliveries_of(store, org, ep.id)
                return all(d.status == DeliveryStatus.HELD for d in items)  # type: ignore[attr-defined]

            await wait_until(held, what="deliveries held")
            sent_while_down = len(rx.at("/down"))
            healthy = True
            assert await store.resume_endpoint(org, ep.id, system_clock()) == 2

            async def delivered() -> bool:
                items = await deliveries_of(store, org, ep.id)
                return all(d.status == DeliveryStatus.SUCCEEDED for d in items)  # type: ignore[attr-defined]

            await wait_until(delivered, what="held deliveries sent after resume")
    assert sent_while_down >= 3
    [meta] = rx.at("/observer")
    body = orjson.loads(meta.body)
    assert body["type"] == "webhook.endpoint_auto_paused"
    assert body["data"]["endpointId"] == ep.id
    assert body["data"]["reason"] == "consecutive_failures"
    assert body["data"]["failureStreak"] >= 3
    assert body["data"]["url"] == ep.url
    assert body["data"]["pausedAt"]


async def test_gone_410_pauses_at_once(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def gone(request: web.Request, n: int) -> web.StreamResponse:
            return await _answer(410)

        ep = await new_endpoint(store, org, rx.on("/gone", gone))
        await new_endpoint(store, org, rx.url("/observer"), event_types=("webhook.*",))
        async with running_worker(store, catalog, publisher):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.at("/observer")) >= 1, what="pause meta event")
    assert len(rx.at("/gone")) == 1
    endpoint = await store.get_endpoint(org, ep.id)
    assert endpoint is not None and endpoint.status == EndpointStatus.PAUSED
    [delivery] = await deliveries_of(store, org, ep.id)
    assert delivery.status == DeliveryStatus.HELD  # type: ignore[attr-defined]
    body = orjson.loads(rx.at("/observer")[0].body)
    assert body["type"] == "webhook.endpoint_auto_paused"
    assert body["data"]["reason"] == endpoint.pause_reason


async def test_failing_meta_delivery_raises_no_meta_event(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def broken(request: web.Request, n: int) -> web.StreamResponse:
            return await _answer(500)

        a = await new_endpoint(store, org, rx.on("/a", broken))
        b = await new_endpoint(store, org, rx.on("/b", broken), event_types=("webhook.*",))
        await new_endpoint(store, org, rx.url("/c"), event_types=("webhook.*",))
        async with running_worker(store, catalog, publisher, pause_after_failures=4):
            await publisher.publish(status_changed(org))

            async def settled() -> bool:
                items = await deliveries_of(store, org, b.id)
                return len(items) >= 2 and all(
                    d.status in (DeliveryStatus.FAILED, DeliveryStatus.HELD)  # type: ignore[attr-defined]
                    for d in items
                )

            await wait_until(settled, what="meta deliveries to b settled")
        # the worker has stopped: every outcome is written and every meta event published
    about = [
        env["data"]["endpointId"]
        for env, _ in publisher.published
        if env["type"].startswith("webhook.")
    ]
    assert about and set(about) == {a.id}
    b_endpoint = await store.get_endpoint(org, b.id)
    assert b_endpoint is not None and b_endpoint.status == EndpointStatus.PAUSED
    assert not any(orjson.loads(r.body)["data"]["endpointId"] == b.id for r in rx.at("/c"))


async def test_redirect_not_followed_and_excerpt_bounded(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def redirect(request: web.Request, n: int) -> web.StreamResponse:
            raise web.HTTPFound(rx.url("/target"))

        async def big(request: web.Request, n: int) -> web.StreamResponse:
            return web.Response(status=200, body=b"\xff" + b"x" * 200_000)

        moved = await new_endpoint(store, org, rx.on("/moved", redirect))
        large = await new_endpoint(store, org, rx.on("/big", big))
        async with running_worker(store, catalog, publisher, retry_schedule=(3600.0,)):
            await publisher.publish(status_changed(org))

            async def attempted() -> bool:
                items = [
                    *await deliveries_of(store, org, moved.id),
                    *await deliveries_of(store, org, large.id),
                ]
                return all(d.attempt_count >= 1 for d in items)  # type: ignore[attr-defined]

            await wait_until(attempted, what="both attempted")
    assert rx.at("/target") == []
    [d_moved] = await deliveries_of(store, org, moved.id)
    assert d_moved.status == DeliveryStatus.PENDING  # type: ignore[attr-defined]
    [attempt] = await store.list_attempts(org, d_moved.id)  # type: ignore[attr-defined]
    assert attempt.status_code == 302
    [d_big] = await deliveries_of(store, org, large.id)
    assert d_big.status == DeliveryStatus.SUCCEEDED  # type: ignore[attr-defined]
    [attempt] = await store.list_attempts(org, d_big.id)  # type: ignore[attr-defined]
    assert attempt.response_excerpt is not None
    assert attempt.response_excerpt.startswith("\ufffd")
    assert len(attempt.response_excerpt.encode("utf-8")) <= 4096 + 2


async def test_private_addresses_refused_at_connect_time(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:
        by_name = await new_endpoint(store, org, rx.url("/name", host="localhost"))
        by_literal = await new_endpoint(store, org, rx.url("/literal"))
        async with running_worker(
            store, catalog, publisher, allow_private=False, retry_schedule=(3600.0,)
        ):
            await publisher.publish(status_changed(org))

            async def attempted() -> bool:
                items = [
                    *await deliveries_of(store, org, by_name.id),
                    *await deliveries_of(store, org, by_literal.id),
                ]
                return all(d.attempt_count >= 1 for d in items)  # type: ignore[attr-defined]

            await wait_until(attempted, what="both attempted")
    assert rx.received == []
    for ep in (by_name, by_literal):
        [delivery] = await deliveries_of(store, org, ep.id)
        [attempt] = await store.list_attempts(org, delivery.id)  # type: ignore[attr-defined]
        assert attempt.status_code is None
        assert attempt.error is not None and attempt.error.startswith("ForbiddenAddress")


async def test_hung_endpoint_does_not_slow_the_others(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    release = asyncio.Event()
    async with running_receiver() as rx:

        async def hang(request: web.Request, n: int) -> web.StreamResponse:
            await release.wait()
            return await _answer(200)

        hung = await new_endpoint(store, org, rx.on("/hung", hang))
        healthy = [await new_endpoint(store, org, rx.url(f"/ok{i}")) for i in range(4)]
        async with running_worker(
            store,
            catalog,
            publisher,
            timeout=3.0,
            concurrency=6,
            endpoint_max_in_flight=2,
            claim_batch_size=6,
            retry_schedule=(3600.0,),
        ):
            for n in range(10):
                await publisher.publish(status_changed(org, n))
            expected = 10 * len(healthy)
            await rx.wait_for(
                lambda: sum(len(rx.at(f"/ok{i}")) for i in range(4)) >= expected,
                timeout=30,
                what="every healthy delivery",
            )
            # ordering, not wall time: every healthy delivery arrived while the hung endpoint
            # has not finished a single attempt (its sends are still waiting for an answer)
            hung_items = await deliveries_of(store, org, hung.id)
            assert all(d.attempt_count == 0 for d in hung_items)  # type: ignore[attr-defined]
            assert 1 <= len(rx.at("/hung")) <= 2  # never more than its share in flight
            release.set()
    for ep in healthy:
        items = await deliveries_of(store, org, ep.id)
        assert len(items) == 10
        assert all(d.status == DeliveryStatus.SUCCEEDED for d in items)  # type: ignore[attr-defined]


async def test_metrics_render_counters_and_store_gauges(store: Store) -> None:
    from tidings.delivery.metrics import DeliveryMetrics, render

    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    metrics = DeliveryMetrics()
    async with running_receiver() as rx:
        await new_endpoint(store, org, rx.url("/ok"))
        async with running_worker(store, catalog, publisher, metrics=metrics):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.received) >= 1, what="delivery")
    body, content_type = await render(store, system_clock(), metrics)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'tidings_deliveries_total{outcome="succeeded"} 1.0' in text
    assert 'tidings_delivery_attempts_total{status_class="2xx"} 1.0' in text
    assert "tidings_delivery_attempt_duration_seconds_count 1.0" in text
    assert 'tidings_deliveries_by_status{status="succeeded"} 1.0' in text
    assert 'tidings_endpoints_by_status{status="active"} 1.0' in text
    assert "tidings_delivery_backlog 0.0" in text


async def test_rate_limit_per_second_spreads_deliveries(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:
        ep = await new_endpoint(store, org, rx.url("/limited"), rate_limit_per_second=5.0)
        async with running_worker(store, catalog, publisher):
            for n in range(8):
                await publisher.publish(status_changed(org, n))
            await rx.wait_for(lambda: len(rx.at("/limited")) >= 8, what="8 deliveries")
    arrivals = sorted(r.at for r in rx.at("/limited"))
    # a bucket of 5 tokens refilled at 5/s: the 8th can only go 3/5 s after the first
    assert arrivals[-1] - arrivals[0] >= 0.5
    [delivery, *_] = await deliveries_of(store, org, ep.id)
    assert delivery.status == DeliveryStatus.SUCCEEDED  # type: ignore[attr-defined]


async def test_a_dead_workers_delivery_below_the_floor_is_sent_once_its_lease_is_over(
    store: Store,
) -> None:
    """The worker claims from a floor just below the earliest due time it last took; a
    delivery due earlier whose lease runs out later (its worker died) lies below that floor
    and must still be found, by the claims from the start the worker makes every half poll."""
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:
        await new_endpoint(store, org, rx.url("/hook"))
        await publisher.publish(status_changed(org, 1))
        [dead] = await store.claim_due("wrk_dead", system_clock(), 2.5, 10)  # then it "dies"
        lease_over = dead.delivery.lease_expires_at
        assert lease_over is not None
        await asyncio.sleep(1.5)  # the next event is due well above the first one's due time
        await publisher.publish(status_changed(org, 2))
        async with running_worker(store, catalog, publisher, poll_interval_seconds=1.0):
            await rx.wait_for(lambda: len(rx.received) == 1, what="the live delivery")
            await rx.wait_for(lambda: len(rx.received) == 2, what="the dead worker's delivery")
            received_at = system_clock()
    ids = [r.headers["X-Tidings-Delivery-Id"] for r in rx.received]
    assert ids[1] == dead.delivery.id
    assert lease_over <= received_at <= lease_over + 3.0
