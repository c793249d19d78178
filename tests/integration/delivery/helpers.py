"""Helpers for delivery tests: real receivers (aiohttp.web on 127.0.0.1), organizations and
endpoints in a real store, publishing events, and a running worker."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tidings.clock import system_clock
from tidings.delivery import HttpSender, Worker, WorkerSettings
from tidings.delivery.metrics import DeliveryMetrics
from tidings.ids import new_id
from tidings.models import (
    ApiKey,
    Endpoint,
    EndpointSecret,
    EndpointStatus,
    Event,
    KeyKind,
    Organization,
)
from tidings.signing import generate_secret
from tidings.store.base import PublishItem, PublishResult, Store
from tidings.subscriptions import plan_deliveries

FAST_SCHEDULE = (0.05, 0.05, 0.1)


# ---- receivers ---------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


Behaviour = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


async def answer_ok(request: web.Request, n: int) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


@dataclass
class Receiver:
    """One aiohttp server; each path has its own behaviour (default 200)."""

    host: str = "127.0.0.1"
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def on(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return self.url(path)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        n = self._counts.get(request.path, 0) + 1
        self._counts[request.path] = n
        self.received.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        self._arrived.set()
        behaviour = self.behaviours.get(request.path, answer_ok)
        return await behaviour(request, n)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {len(self.received)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=0.05)


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---- catalog and publisher stand-ins ------------------------------------------------------------
def real_catalog() -> Any:
    from tidings.catalog import Catalog

    return Catalog.load_default()


class StorePublisher:
    """A minimal publisher over the real store: validates `data` with the catalog, plans
    deliveries with the real `subscriptions.plan_deliveries` and stores them with the event in
    one transaction. (The product's `tidings.publishing.Publisher` does more; this keeps the
    delivery tests about delivery.)"""

    def __init__(self, store: Store, catalog: Any) -> None:
        self.store = store
        self.catalog = catalog
        self.published: list[tuple[dict[str, Any], str | None]] = []

    async def publish(
        self, envelope: dict[str, Any], *, idempotency_key: str | None = None
    ) -> PublishResult:
        issues = self.catalog.validate_data(
            envelope["type"], envelope["schemaVersion"], envelope["data"]
        )
        assert not issues, f"{envelope['type']} data rejected by the catalog: {issues}"
        self.published.append((envelope, idempotency_key))
        now = system_clock()
        event = Event(
            id=envelope.get("id") or new_id("evt"),
            organization_id=envelope["organizationUuid"],
            type=envelope["type"],
            schema_version=envelope["schemaVersion"],
            source=envelope.get("source", "WEB_APP"),
            created_at=now,
            data=envelope["data"],
            partner_uuid=envelope.get("partnerUuid"),
            subject=envelope.get("subject"),
            attributes=envelope.get("attributes") or {},
            idempotency_key=idempotency_key,
        )
        endpoints = await self.store.list_subscribed_endpoints(event.organization_id)
        deliveries = plan_deliveries(event, endpoints, self.catalog, new_id)
        [result] = await self.store.publish([PublishItem(event, deliveries)], now=now)
        return result


# ---- tenants ------------------------------------------------------------------------------------
async def new_org(store: Store) -> str:
    org_id = str(uuid.uuid4())
    now = system_clock()
    await store.create_organization(
        Organization(org_id, "test org", now),
        ApiKey(new_id("key"), KeyKind.ORGANIZATION, org_id, now),
        uuid.uuid4().hex,
    )
    return org_id


async def new_endpoint(
    store: Store,
    org_id: str,
    url: str,
    *,
    event_types: tuple[str, ...] = ("compliance.*",),
    fmt: str = "novatrade",
    secrets: tuple[EndpointSecret, ...] | None = None,
    **fields: Any,
) -> Endpoint:
    now = system_clock()
    endpoint = Endpoint(
        id=new_id("ep"),
        organization_id=org_id,
        url=url,
        event_types=event_types,
        format=fmt,
        secrets=secrets or (EndpointSecret(generate_secret(fmt), now),),
        status=EndpointStatus.ACTIVE,
        created_at=now,
        updated_at=now,
        **fields,
    )
    await store.create_endpoint(endpoint)
    return endpoint


def status_changed(org_id: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "WEB_APP",
        "organizationUuid": org_id,
        "partnerUuid": None,
        "data": {"orderId": f"order-{n}", "previousStatus": "INCOMPLETE", "status": "VALID"},
        **extra,
    }


# ---- worker -------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def running_worker(
    store: Store,
    catalog: Any,
    publisher: Any,
    *,
    allow_private: bool = True,
    timeout: float = 5.0,
    metrics: DeliveryMetrics | None = None,
    **settings: Any,
) -> AsyncIterator[Worker]:
    """A worker on `store` with fast test settings (changed by `settings`, WorkerSettings
    fields), stopped when the block ends."""
    worker_settings = WorkerSettings(
        worker_id=new_id("wrk"),
        delivery_timeout_seconds=timeout,
        retry_schedule=FAST_SCHEDULE,
        jitter_fraction=0.0,
        pause_after_failures=20,
        pause_after_seconds=72 * 3600.0,
        retention_days=0,
        poll_interval_seconds=0.05,
        shutdown_grace_seconds=2.0,
    )
    worker = Worker(
        store,
        catalog,
        publisher,
        HttpSender(timeout_seconds=timeout, allow_private=allow_private),
        dataclasses.replace(worker_settings, **settings),
        metrics=metrics if metrics is not None else DeliveryMetrics(),
    )
    store.add_wakeup_listener(worker.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
