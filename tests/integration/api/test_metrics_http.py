"""`GET /metrics` through the app as `tidings serve` assembles it (issue 3 item 8): Prometheus
text with deliveries by outcome, attempts by status class, the latency histogram, the due
backlog and its lag, endpoints by status and the worst endpoints' failure streaks."""

from __future__ import annotations

import httpx

from tests.integration.delivery.helpers import (
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    running_worker,
    status_changed,
)
from tidings.assembly import build_app
from tidings.config import Settings
from tidings.delivery.metrics import DeliveryMetrics
from tidings.publishing import Publisher
from tidings.store.base import Store


async def test_metrics_endpoint_reports_delivery_health(store: Store) -> None:
    catalog = real_catalog()
    publisher = Publisher(store, catalog)
    org = await new_org(store)
    async with running_receiver() as rx:

        async def fail(request: object, n: int) -> object:
            from aiohttp import web

            return web.Response(status=503)

        rx.behaviours["/down"] = fail  # type: ignore[assignment]
        await new_endpoint(store, org, rx.url("/ok"))
        down = await new_endpoint(store, org, rx.url("/down"))
        async with running_worker(
            store, catalog, publisher, metrics=DeliveryMetrics.shared(), retry_schedule=(60.0,)
        ):
            await publisher.publish(status_changed(org))
            await rx.wait_for(lambda: len(rx.received) >= 2, what="two attempts")
        # with the worker stopped, a new event leaves two due deliveries: backlog and lag
        app = build_app(Settings(), store, catalog, publisher)
        await publisher.publish(status_changed(org, 2))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'tidings_deliveries_total{outcome="succeeded"}' in text
    assert 'tidings_delivery_attempts_total{status_class="2xx"}' in text
    assert 'tidings_delivery_attempts_total{status_class="5xx"}' in text
    assert "tidings_delivery_attempt_duration_seconds_bucket" in text
    assert 'tidings_deliveries_by_status{status="pending"}' in text
    assert 'tidings_endpoints_by_status{status="active"} 2.0' in text
    assert "tidings_delivery_backlog 2.0" in text  # the new event's two deliveries are due
    assert "tidings_delivery_lag_seconds" in text
    streak = [ln for ln in text.splitlines() if ln.startswith("tidings_endpoint_failure_streak{")]
    assert len(streak) == 1 and down.id in streak[0] and streak[0].endswith(" 1.0")
    # per endpoint: the worker's attempts and durations, and what waits (read at scrape time)
    lines = set(text.splitlines())
    assert f'tidings_endpoint_attempts_total{{endpoint_id="{down.id}",status_class="5xx"}} 1.0' in (
        lines
    )
    assert (
        f'tidings_endpoint_attempt_duration_seconds_count{{endpoint_id="{down.id}"}} 1.0' in lines
    )
    labels = f'endpoint_id="{down.id}",organization_id="{org}"'
    # the failed first attempt waits for its retry, and the new event's delivery is due
    assert f"tidings_endpoint_pending{{{labels}}} 2.0" in lines
    assert f"tidings_endpoint_held{{{labels}}} 0.0" in lines
    since = [
        ln for ln in lines if ln.startswith(f"tidings_endpoint_seconds_since_success{{{labels}}}")
    ]
    assert len(since) == 1 and float(since[0].rsplit(" ", 1)[1]) >= 0


async def test_metrics_token_guards_metrics_but_not_the_probes(store: Store) -> None:
    catalog = real_catalog()
    app = build_app(Settings(metrics_token="scrape-me"), store, catalog, Publisher(store, catalog))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        refused = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
        bare = await client.get("/metrics", headers={"Authorization": "scrape-me"})
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        ready = await client.get("/readyz")
    assert refused.status_code == wrong.status_code == bare.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "TIDINGS_METRICS_TOKEN" in refused.json()["error"]["message"]
    assert ok.status_code == 200 and "tidings_delivery_backlog" in ok.text
    assert ready.status_code == 200
