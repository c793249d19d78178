"""Ordered delivery per subject (issue 25) with the real worker and a real receiver: each
subject's events arrive in publish order under retries, one at a time, while a subject that
keeps failing holds back only itself; with two worker processes on one PostgreSQL no two
deliveries of one endpoint and subject are ever in flight together; a worker killed with -9
mid-attempt loses nothing and lets no later event overtake."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections import defaultdict
from typing import Any

import pytest
from aiohttp import web

from tidings.models import DeliveryStatus
from tidings.store.base import Store
from tidings.store.connect import open_store

from .helpers import (
    Behaviour,
    StorePublisher,
    new_endpoint,
    new_org,
    real_catalog,
    running_receiver,
    running_worker,
    status_changed,
    wait_until,
)
from .test_worker_processes import Processes, all_deliveries, poll


class Ledger:
    """What the receiver saw, per (path, subject): each request's event id and answer, in
    arrival order, and how many of the subject's requests were in flight at once."""

    def __init__(self, subject_of: dict[str, str]) -> None:
        self.subject_of = subject_of
        self.arrivals: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        self.in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self.most_in_flight = 0
        self.previous: dict[str, str | None] = {}  # event id -> X-Tidings-Previous-Event-Id
        self.sequence: dict[str, int] = {}

    def behaviour(self, status_for: Any, delay: float = 0.0) -> Behaviour:
        async def answer(request: web.Request, n: int) -> web.StreamResponse:
            event_id = request.headers["X-Tidings-Event-Id"]
            key = (request.path, self.subject_of[event_id])
            self.previous[event_id] = request.headers.get("X-Tidings-Previous-Event-Id")
            self.sequence[event_id] = int(request.headers["X-Tidings-Sequence"])
            self.in_flight[key] += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight[key])
            try:
                if delay:
                    await asyncio.sleep(delay)
                status = status_for(event_id, n)
                self.arrivals[key].append((event_id, status))
                return web.Response(status=status, text="ok" if status == 200 else "no")
            finally:
                self.in_flight[key] -= 1

        return answer

    def check_order(self, published: dict[str, list[str]], path: str) -> None:
        """Each subject's events arrive in publish order: an event is first sent only after the
        one before it got its 200 (a terminal failure aside), and links to it."""
        for subject, events in published.items():
            arrivals = self.arrivals[(path, subject)]
            first_seen = [
                e for i, (e, _) in enumerate(arrivals) if e not in {a for a, _ in arrivals[:i]}
            ]
            assert first_seen == events, (subject, arrivals)
            for before, after in itertools.pairwise(events):
                assert self.previous[after] == before
                assert self.sequence[after] > self.sequence[before]
                sent_after = arrivals.index(next(a for a in arrivals if a[0] == after))
                assert (before, 200) in arrivals[:sent_after], (subject, arrivals)


async def publish_subjects(
    publisher: StorePublisher, org: str, subjects: list[str], per_subject: int
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Events of each subject interleaved (s0 e0, s1 e0, ..., s0 e1, ...)."""
    published: dict[str, list[str]] = defaultdict(list)
    subject_of: dict[str, str] = {}
    for n in range(per_subject):
        for subject in subjects:
            event = (await publisher.publish(status_changed(org, n, subject=subject))).event
            published[subject].append(event.id)
            subject_of[event.id] = subject
    return dict(published), subject_of


async def test_each_subject_arrives_in_order_under_retries_and_a_stuck_one_holds_only_itself(
    store: Store,
) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    subject_of: dict[str, str] = {}
    seen = Ledger(subject_of)
    stuck_first: list[str] = []
    tries: dict[str, int] = {}

    def status_for(event_id: str, n: int) -> int:
        if subject_of[event_id] == "stuck":
            return 500 if event_id == stuck_first[0] else 200
        # every other event fails its first attempt (retried 50 ms later): retries reorder
        # by nature, and none of these fails often enough to reach the 600 s wait
        tries[event_id] = tries.get(event_id, 0) + 1
        return 500 if tries[event_id] == 1 and len(tries) % 2 == 0 else 200

    async with running_receiver() as rx:
        path = "/ordered"
        ep = await new_endpoint(
            store, org, rx.on(path, seen.behaviour(status_for)), ordering="subject"
        )
        published, ids = await publish_subjects(
            publisher, org, ["s1", "s2", "s3", "stuck"], per_subject=6
        )
        subject_of.update(ids)
        stuck_first.append(published["stuck"][0])
        # long retries for the stuck subject's first event: it stays in front all along
        async with running_worker(store, catalog, publisher, retry_schedule=(0.05,) * 2 + (600.0,)):
            healthy = [e for s in ("s1", "s2", "s3") for e in published[s]]

            async def healthy_done() -> bool:
                items = await all_deliveries(store, org, ep.id)
                done = {d.event_id for d in items if d.status == DeliveryStatus.SUCCEEDED}
                return set(healthy) <= done

            await wait_until(healthy_done, timeout=60, what="the healthy subjects delivered")
        # the stuck subject's later events were never sent while its first kept failing
        stuck_arrivals = {e for e, _ in seen.arrivals[(path, "stuck")]}
        assert stuck_arrivals == {published["stuck"][0]}
        statuses = {d.event_id: d.status for d in await all_deliveries(store, org, ep.id)}
        assert {statuses[e] for e in published["stuck"][1:]} == {DeliveryStatus.QUEUED}
        seen.check_order({s: published[s] for s in ("s1", "s2", "s3")}, path)
        assert seen.most_in_flight == 1


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.postgres
async def test_two_workers_on_postgres_never_have_one_subject_in_flight_twice(
    fresh_database_url_factory: Any, tmp_path: Any
) -> None:
    database_url = fresh_database_url_factory("postgres")
    store = open_store(database_url)
    await store.connect()
    processes = Processes(tmp_path)
    try:
        publisher = StorePublisher(store, real_catalog())
        org = await new_org(store)
        subject_of: dict[str, str] = {}
        seen = Ledger(subject_of)

        def status_for(event_id: str, n: int) -> int:
            return 500 if n % 4 == 0 else 200

        async with running_receiver() as rx:
            paths = [f"/ordered{i}" for i in range(3)]
            endpoints = [
                await new_endpoint(
                    store, org, rx.on(p, seen.behaviour(status_for, delay=0.01)), ordering="subject"
                )
                for p in paths
            ]
            published, ids = await publish_subjects(
                publisher, org, [f"s{i}" for i in range(8)], per_subject=5
            )
            subject_of.update(ids)
            for _ in range(2):
                processes.start(database_url, TIDINGS_CLAIM_BATCH_SIZE="10")

            async def all_succeeded() -> bool:
                for ep in endpoints:
                    items = await all_deliveries(store, org, ep.id)
                    if not all(d.status == DeliveryStatus.SUCCEEDED for d in items):
                        return False
                return True

            await poll(all_succeeded, 90, "every delivery to succeed", processes)
        for path in paths:
            seen.check_order(published, path)
        assert seen.most_in_flight == 1, processes.logs()
    finally:
        processes.stop_all()
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_worker_killed_mid_attempt_lets_no_later_event_overtake(
    database_url: str, tmp_path: Any
) -> None:
    store = open_store(database_url)
    await store.connect()
    processes = Processes(tmp_path)
    hold = asyncio.Event()
    try:
        publisher = StorePublisher(store, real_catalog())
        org = await new_org(store)
        subject_of: dict[str, str] = {}
        seen = Ledger(subject_of)
        async with running_receiver() as rx:
            inner = seen.behaviour(lambda e, n: 200)

            async def held_then_ok(request: web.Request, n: int) -> web.StreamResponse:
                if n == 1:
                    await hold.wait()  # the first attempt hangs until its worker is dead
                return await inner(request, n)

            ep = await new_endpoint(store, org, rx.on("/k", held_then_ok), ordering="subject")
            published, ids = await publish_subjects(publisher, org, ["s"], per_subject=5)
            subject_of.update(ids)
            settings = {"TIDINGS_DELIVERY_TIMEOUT": "2", "TIDINGS_LEASE_MARGIN": "1"}
            first = processes.start(database_url, **settings)
            await rx.wait_for(lambda: len(rx.received) >= 1, timeout=30, what="the first send")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            assert len(rx.received) == 1  # nothing else of the subject went out meanwhile
            hold.set()
            processes.start(database_url, **settings)

            async def all_succeeded() -> bool:
                items = await all_deliveries(store, org, ep.id)
                return len(items) == 5 and all(d.status == DeliveryStatus.SUCCEEDED for d in items)

            await poll(all_succeeded, 60, "every delivery to succeed", processes)
        arrivals = [e for e, _ in seen.arrivals[("/k", "s")]]
        # the killed attempt's event first (its answer came after the kill: it counts once
        # more here), then the rest in order
        assert [e for i, e in enumerate(arrivals) if e not in arrivals[:i]] == published["s"]
        seen.check_order(published, "/k")
    finally:
        processes.stop_all()
        await store.close()


async def test_a_subject_held_back_too_long_is_told_of_once(store: Store) -> None:
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    subject_of: dict[str, str] = {}
    seen = Ledger(subject_of)

    def status_for(event_id: str, n: int) -> int:
        return 500 if subject_of[event_id] == "stuck" else 200

    async with running_receiver() as rx:
        ep = await new_endpoint(
            store, org, rx.on("/ordered", seen.behaviour(status_for)), ordering="subject"
        )
        await new_endpoint(store, org, rx.url("/meta"), event_types=("webhook.*",))
        published, ids = await publish_subjects(publisher, org, ["stuck", "fine"], per_subject=3)
        subject_of.update(ids)
        async with running_worker(
            store,
            catalog,
            publisher,
            retry_schedule=(0.05, 600.0),
            subject_blocked_after_seconds=0.5,
        ):
            await rx.wait_for(lambda: bool(rx.at("/meta")), timeout=30, what="the meta event")
            await asyncio.sleep(2.5)  # two more rounds of the watch: nothing told twice
        [told] = [r for r in rx.at("/meta")]
        body = json.loads(told.body)
        assert body["type"] == "webhook.subject_blocked"
        data = body["data"]
        assert data["endpointId"] == ep.id and data["subject"] == "stuck"
        assert data["blockingEventId"] == published["stuck"][0]
        assert data["waiting"] == 2 and data["attempts"] >= 1 and data["lastStatusCode"] == 500


async def test_auto_pause_holds_the_subjects_head_and_resume_goes_on_in_order(
    store: Store,
) -> None:
    """A subject's head failing until the endpoint pauses itself: the head is held, the rest
    stay queued (nothing of the subject goes out while paused); after resume the head goes
    first and the rest follow in order."""
    catalog = real_catalog()
    publisher = StorePublisher(store, catalog)
    org = await new_org(store)
    subject_of: dict[str, str] = {}
    seen = Ledger(subject_of)
    failing = [True]

    def status_for(event_id: str, n: int) -> int:
        return 500 if failing[0] else 200

    async with running_receiver() as rx:
        ep = await new_endpoint(
            store, org, rx.on("/p", seen.behaviour(status_for)), ordering="subject"
        )
        published, ids = await publish_subjects(publisher, org, ["s"], per_subject=4)
        subject_of.update(ids)
        async with running_worker(
            store, catalog, publisher, pause_after_failures=3, retry_schedule=(0.05,) * 9
        ):

            async def paused() -> bool:
                current = await store.get_endpoint(org, ep.id)
                return current is not None and current.status == "paused"

            await wait_until(paused, timeout=30, what="the endpoint to pause itself")
            statuses = {d.event_id: d.status for d in await all_deliveries(store, org, ep.id)}
            head, *rest = published["s"]
            assert statuses[head] == DeliveryStatus.HELD
            assert {statuses[e] for e in rest} == {DeliveryStatus.QUEUED}
            assert {e for e, _ in seen.arrivals[("/p", "s")]} == {head}
            failing[0] = False
            assert await store.resume_endpoint(org, ep.id, time.time()) == 1

            async def all_succeeded() -> bool:
                items = await all_deliveries(store, org, ep.id)
                return all(d.status == DeliveryStatus.SUCCEEDED for d in items)

            await wait_until(all_succeeded, timeout=30, what="the subject delivered after resume")
        seen.check_order(published, "/p")
