"""Crash safety with real worker processes: a worker killed with SIGKILL while it holds leases
loses nothing (a new worker sends those deliveries again once the lease is over), attempt rows
stay consistent, and two workers on one PostgreSQL never send the same delivery twice."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.acceptance.conftest import TEST_ENCRYPTION_KEY
from tidings.models import DeliveryStatus
from tidings.store.base import DeliveryFilter, Store
from tidings.store.connect import open_store

from .helpers import (
    StorePublisher,
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    status_changed,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[3]


def worker_command() -> list[str]:
    """`python -m tidings worker` once the whole process wiring is there, else the stand-in."""
    if importlib.util.find_spec("tidings.publishing") is not None:
        return [sys.executable, "-m", "tidings", "worker"]
    return [sys.executable, "-m", "tests.integration.delivery.worker_process"]


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, database_url: str, **extra: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env.update(
            {
                "TIDINGS_DATABASE_URL": database_url,
                "TIDINGS_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
                "TIDINGS_ALLOW_PRIVATE_URLS": "true",
                "TIDINGS_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
                "TIDINGS_RETRY_JITTER": "0",
                "TIDINGS_LOG_LEVEL": "INFO",
                "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
                **extra,
            }
        )
        log_path = self.tmp_path / f"worker-{len(self.procs)}.log"
        with log_path.open("wb") as fh:
            proc = subprocess.Popen(
                worker_command(), cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT
            )
        self.procs.append((proc, log_path))
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} (exit {proc.poll()})\n{path.read_text(errors='replace')[-4000:]}"
            for proc, path in self.procs
        )

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


async def poll(check: Any, timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{procs.logs()}")
        await asyncio.sleep(0.1)


async def all_deliveries(store: Store, org: str, endpoint_id: str) -> list[Any]:
    page = await store.list_deliveries(
        org, DeliveryFilter(endpoint_id=endpoint_id), limit=500, cursor=None
    )
    return list(page.items)


async def test_killed_worker_loses_nothing(
    backend: str, database_url: str, processes: Processes
) -> None:
    store = open_store(database_url)
    await store.connect()
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    hold = asyncio.Event()
    try:
        async with running_receiver() as rx:

            async def held(request: web.Request, n: int) -> web.StreamResponse:
                await hold.wait()
                return web.Response(text="ok")

            org = await new_org(store)
            ep = await new_endpoint(store, org, rx.on("/hook", held))
            events = [(await publisher.publish(status_changed(org, n))).event.id for n in range(20)]
            settings = {"TIDINGS_DELIVERY_TIMEOUT": "2", "TIDINGS_LEASE_MARGIN": "1"}
            first = processes.start(database_url, **settings)
            # a new endpoint's window is two sends: both held, so the worker holds leases
            await rx.wait_for(lambda: len(rx.received) >= 2, timeout=30, what="held requests")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            leased_by_dead = {r.headers["X-Tidings-Delivery-Id"] for r in rx.received}
            hold.set()
            processes.start(database_url, **settings)

            async def all_succeeded() -> bool:
                items = await all_deliveries(store, org, ep.id)
                return len(items) == 20 and all(d.status == DeliveryStatus.SUCCEEDED for d in items)

            await poll(all_succeeded, 60, "every delivery to succeed", processes)
        received_events = Counter(r.headers["X-Tidings-Event-Id"] for r in rx.received)
        assert set(received_events) == set(events)  # every delivery arrived at least once
        by_delivery = Counter(r.headers["X-Tidings-Delivery-Id"] for r in rx.received)
        for delivery_id in leased_by_dead:
            assert by_delivery[delivery_id] >= 2  # sent again after the lease ran out
        for delivery in await all_deliveries(store, org, ep.id):
            attempts = [
                a
                for a in await store.list_attempts(org, delivery.id)
                if a.series == delivery.series
            ]
            assert delivery.attempt_count == len(attempts)
            assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))
            assert attempts[-1].status_code == 200
    finally:
        await store.close()


@pytest.mark.postgres
async def test_two_workers_on_one_postgres_never_send_twice(
    fresh_database_url_factory: Any, processes: Processes, request: pytest.FixtureRequest
) -> None:
    database_url = fresh_database_url_factory("postgres")
    store = open_store(database_url)
    await store.connect()
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    try:
        async with running_receiver() as rx:
            org = await new_org(store)
            endpoints = [await new_endpoint(store, org, rx.url(f"/hook{i}")) for i in range(4)]
            for _ in range(2):
                processes.start(database_url, TIDINGS_CLAIM_BATCH_SIZE="20")
            for n in range(60):  # 60 events x 4 endpoints = 240 deliveries
                await publisher.publish(status_changed(org, n))
            await rx.wait_for(lambda: len(rx.received) >= 240, timeout=60, what="240 deliveries")

            async def all_succeeded() -> bool:
                for ep in endpoints:
                    items = await all_deliveries(store, org, ep.id)
                    if not all(d.status == DeliveryStatus.SUCCEEDED for d in items):
                        return False
                return True

            await poll(all_succeeded, 30, "every delivery recorded", processes)
        by_delivery = Counter(r.headers["X-Tidings-Delivery-Id"] for r in rx.received)
        assert len(by_delivery) == 240
        assert max(by_delivery.values()) == 1, processes.logs()
        assert all(proc.poll() is None for proc, _ in processes.procs), processes.logs()
    finally:
        await store.close()


async def test_sigterm_finishes_sends_in_flight_and_gives_back_the_rest(
    backend: str, database_url: str, processes: Processes
) -> None:
    store = open_store(database_url)
    await store.connect()
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    try:
        async with running_receiver() as rx:

            async def slow(request: web.Request, n: int) -> web.StreamResponse:
                await asyncio.sleep(1.0)
                return web.Response(text="ok")

            org = await new_org(store)
            ep = await new_endpoint(store, org, rx.on("/slow", slow))
            for n in range(12):
                await publisher.publish(status_changed(org, n))
            worker = processes.start(database_url, TIDINGS_ENDPOINT_MAX_IN_FLIGHT="3")
            await rx.wait_for(lambda: len(rx.received) >= 3, timeout=30, what="sends in flight")
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(worker.wait, 20) == 0, processes.logs()
            received_before_stop = Counter(r.headers["X-Tidings-Delivery-Id"] for r in rx.received)
            items = await all_deliveries(store, org, ep.id)
            for delivery in items:
                if delivery.id in received_before_stop:
                    assert delivery.status == DeliveryStatus.SUCCEEDED  # finished, recorded
                else:
                    assert delivery.status == DeliveryStatus.PENDING
                    assert delivery.lease_owner is None  # given back, not left leased
            processes.start(database_url, TIDINGS_ENDPOINT_MAX_IN_FLIGHT="12")

            async def all_succeeded() -> bool:
                items = await all_deliveries(store, org, ep.id)
                return all(d.status == DeliveryStatus.SUCCEEDED for d in items)

            await poll(all_succeeded, 30, "the rest delivered by the next worker", processes)
        by_delivery = Counter(r.headers["X-Tidings-Delivery-Id"] for r in rx.received)
        assert len(by_delivery) == 12
        assert max(by_delivery.values()) == 1  # a clean stop sends nothing twice
    finally:
        await store.close()
