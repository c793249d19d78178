"""The receiver SDK's `reconcile()` and `OrderingGuard` against a real server (issue 25, "the SDK's
reconcile() recovers deliberately dropped deliveries in a test with a real server"): the real
tidings app served by uvicorn on 127.0.0.1, the real worker delivering over HTTP to a receiver
on 127.0.0.1 that verifies each delivery with the SDK, and drops some (answers 200, stores
nothing) or refuses one for good; `reconcile`, through `TidingsClient` and the real API, hands
exactly those to the same handler. On both backends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from aiohttp import web

from tests.integration.delivery.helpers import (
    real_catalog,
    running_receiver,
    running_worker,
    wait_until,
)
from tidings.api import create_app
from tidings.auth import hash_key
from tidings.config import Settings
from tidings.ids import new_id
from tidings.models import ApiKey, KeyKind
from tidings.publishing import Publisher
from tidings.receiver import (
    OrderCheck,
    OrderingGuard,
    TidingsClient,
    Verifier,
    WebhookEvent,
    reconcile,
)
from tidings.store.base import Store

PLATFORM_KEY = "tdk_platform_reconcile_test_0123456789"

# (event id, subject) in publish order: sequence numbers 1..12
PUBLISHED = [
    ("a1", "A"), ("b1", "B"), ("a2", "A"), ("n1", None),
    ("b2", "B"), ("a3", "A"), ("b3", "B"), ("n2", None),
    ("a4", "A"), ("b4", "B"), ("a5", "A"), ("n3", None),
]  # fmt: skip
DROPPED = {"a2"}  # answered 200 and lost
REFUSED = {"a4"}  # answered 500 on every attempt: failed for good
CHUNK = 4  # 1-4 holds a2, 5-8 is complete, 9-12 holds a4


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app on a socket of 127.0.0.1, served by uvicorn in this event loop."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # pytest's signals stay pytest's
            yield

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: _started(server, task), what="uvicorn to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
        sock.close()


async def _started(server: Any, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raises what stopped it
    return bool(server.started)


def envelope(org_id: str, event_id: str, subject: str | None, catalog: Any) -> dict[str, Any]:
    example = catalog.get("compliance.status_changed").versions[2].examples[0]
    body: dict[str, Any] = {
        "id": event_id,
        "type": "compliance.status_changed",
        "schemaVersion": 2,  # the newest: the delivery carries the stored data as it is
        "source": "WEB_APP",
        "organizationUuid": org_id,
        "data": {**example, "orderId": f"order-{event_id}"},
    }
    if subject is not None:
        body["subject"] = subject
    return body


async def test_reconcile_recovers_exactly_the_dropped_deliveries(store: Store) -> None:
    catalog = real_catalog()
    await store.ensure_platform_key(
        ApiKey(id=new_id("key"), kind=KeyKind.PLATFORM, organization_id=None, created_at=0.0),
        hash_key(PLATFORM_KEY),
    )
    publisher = Publisher(store, catalog)
    app = create_app(Settings(allow_private_urls=True), store, catalog, publisher)
    platform = {"Authorization": f"Bearer {PLATFORM_KEY}"}

    # the receiver's state: what it stored (event id -> sequence), and what the route parsed
    stored: dict[str, int] = {}
    parsed: dict[str, WebhookEvent] = {}  # the last delivery of each id, dropped ones included
    guard = OrderingGuard()
    flagged: list[OrderCheck] = []
    verifier: list[Verifier] = []

    def handle(event: WebhookEvent) -> None:
        """The application's handler: the webhook route's and reconcile's."""
        assert event.sequence is not None
        stored[event.id] = event.sequence
        guard.seen(event.id)

    async def route(request: web.Request, n: int) -> web.StreamResponse:
        event = verifier[0].verify_and_parse(await request.read(), request.headers)
        parsed[event.id] = event
        if event.id in DROPPED:  # lost before the application saw it (a crash, a bug)
            return web.Response(status=200, text="ok")
        if event.id in REFUSED:
            return web.Response(status=500, text="not now")
        check = guard.check(event)
        if not check.in_order:
            flagged.append(check)
        handle(event)
        return web.Response(status=200, text="ok")

    async with (
        serving(app) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
        running_receiver() as rx,
    ):
        r = await http.post("/v1/organizations", json={"name": "recon"}, headers=platform)
        assert r.status_code == 201, r.text
        org_id, org_key = r.json()["organizationUuid"], r.json()["apiKey"]
        org = {"Authorization": f"Bearer {org_key}"}
        r = await http.post(
            "/v1/endpoints",
            json={
                "url": rx.on("/hook", route),
                "eventTypes": ["compliance.*"],
                "ordering": "subject",
            },
            headers=org,
        )
        assert r.status_code == 201, r.text
        endpoint_id, secret = r.json()["id"], r.json()["secret"]
        verifier.append(Verifier("novatrade", [secret]))

        async with running_worker(store, catalog, publisher):
            for event_id, subject in PUBLISHED:
                r = await http.post(
                    "/v1/events",
                    json=envelope(org_id, event_id, subject, catalog),
                    headers=platform,
                )
                assert r.status_code == 201, r.text

            async def settled() -> bool:
                r = await http.get(
                    f"/v1/endpoints/{endpoint_id}/ledger", params={"limit": 100}, headers=org
                )
                items = r.json()["items"]
                return len(items) == len(PUBLISHED) and all(
                    i["status"] in ("succeeded", "failed") for i in items
                )

            await wait_until(settled, timeout=60, what="every delivery to settle")

        # every event reached the receiver; it holds all but the dropped and the refused one
        assert set(parsed) == {event_id for event_id, _ in PUBLISHED}
        assert set(stored) == set(parsed) - DROPPED - REFUSED
        sequence_of = {event_id: n for n, (event_id, _) in enumerate(PUBLISHED, start=1)}
        assert stored == {e: sequence_of[e] for e in stored}
        # the guard saw subject A jump over each lost event
        assert [(c.event_id, c.missing) for c in flagged] == [("a3", "a2"), ("a5", "a4")]

        client = TidingsClient(base_url, org_key, endpoint_id)
        handled: list[WebhookEvent] = []

        def handler(event: WebhookEvent) -> None:
            handled.append(event)
            handle(event)

        before = dict(stored)
        report = await asyncio.to_thread(reconcile, client, before, handler, chunk=CHUNK)

        assert [e.id for e in handled] == report.recovered == ["a2", "a4"]
        assert (report.chunks_checked, report.chunks_differed) == (3, 2)
        assert report.last_sequence == len(PUBLISHED)
        assert report.gaps == [sequence_of["a2"], sequence_of["a4"]]
        assert (report.pending, report.unexpected, report.unavailable) == (0, [], [])
        assert report.complete
        # each recovered event is the one its delivery carried, but for the attempt number
        for event in handled:
            delivered = parsed[event.id]
            assert delivered.sequence == sequence_of[event.id]
            assert event == WebhookEvent(**{**delivered.__dict__, "attempt": None})
        assert [e.previous_event_id for e in handled] == ["a1", "a3"]
        assert stored == sequence_of

        # now everything agrees: one digest request per chunk and nothing else
        again = await asyncio.to_thread(reconcile, client, dict(stored), handler, chunk=CHUNK)
        assert (again.chunks_checked, again.chunks_differed, again.recovered) == (3, 0, [])
        assert len(handled) == 2
