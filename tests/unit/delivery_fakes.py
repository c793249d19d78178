"""What the worker's unit tests share: claims built in memory, an in-memory store that records
what the worker writes (`FakeStore`; `DueStore` claims only what is due, like the real one), a
sender that answers 200 (optionally once a gate opens), and a worker built from its settings."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from tidings.catalog import Catalog
from tidings.clock import Clock, system_clock
from tidings.delivery.metrics import DeliveryMetrics
from tidings.delivery.sender import SendResult
from tidings.delivery.settings import WorkerSettings
from tidings.delivery.worker import Worker
from tidings.models import (
    AttemptOutcome,
    BlockedSubject,
    ClaimedDelivery,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointHealth,
    EndpointSecret,
    EndpointStatus,
    Event,
)
from tidings.store.base import StoreError
from tidings.store.types import EndpointHour

# No event type at all: the worker's unit tests never convert a version or raise a meta event.
EMPTY_CATALOG = Catalog([])


def make_claim(
    n: int,
    *,
    endpoint_id: str = "ep_1",
    attempt_count: int = 0,
    is_meta: bool = False,
    rate_limit_per_second: float | None = None,
) -> ClaimedDelivery:
    event = Event(
        id=f"evt_{n}",
        organization_id="org",
        type="compliance.status_changed",
        schema_version=1,
        source="WEB_APP",
        created_at=1_700_000_000.0,
        data={"orderId": str(n)},
    )
    endpoint = Endpoint(
        id=endpoint_id,
        organization_id="org",
        url=f"https://example.com/{endpoint_id}",
        event_types=("compliance.*",),
        format="novatrade",
        secrets=(EndpointSecret("ntsec_" + "00" * 32, 0.0),),
        rate_limit_per_second=rate_limit_per_second,
    )
    delivery = Delivery(
        id=f"dlv_{n}",
        organization_id="org",
        event_id=event.id,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.PENDING,
        schema_version=1,
        attempt_count=attempt_count,
        next_attempt_at=0.0,
        created_at=0.0,
        updated_at=0.0,
        is_meta=is_meta,
    )
    return ClaimedDelivery(delivery=delivery, event=event, endpoint=endpoint)


def result(status: int | None, retry_after: str | None = None) -> SendResult:
    return SendResult(status, None if status else "OSError: refused", "", 1.0, retry_after)


def _dues(ids: Sequence[str], next_attempt_at: float | Sequence[float]) -> list[float]:
    """`release`'s due times, one per delivery."""
    if isinstance(next_attempt_at, int | float):
        return [float(next_attempt_at)] * len(ids)
    return list(next_attempt_at)


class FakeStore:
    """Hands out `claims` once, records what the worker writes. The operations named in
    `failing` raise StoreError; `release_gate`, when set, holds releases until it opens;
    `pause_changes` is what pause_endpoint answers (False: another worker paused first)."""

    def __init__(self, claims: list[ClaimedDelivery], *, failing: Collection[str] = ()) -> None:
        self.failing = set(failing)
        self.release_gate: asyncio.Event | None = None
        self.pause_changes = True
        self.claims = list(claims)
        self.claim_limits: list[int] = []
        self.claim_floors: list[float] = []
        self.writes: list[list[AttemptOutcome]] = []
        self.released: list[tuple[list[str], float]] = []
        self.paused: list[tuple[str, str]] = []
        self.seen: list[tuple[str, float]] = []  # (worker_id, now) of each presence upsert
        self.gone: list[str] = []
        self.stats: list[EndpointHour] = []

    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        self._fail_if("claim_due")
        self.claim_limits.append(limit)
        self.claim_floors.append(due_from)
        batch, self.claims = self.claims[:limit], self.claims[limit:]
        return batch

    async def record_outcomes(
        self, worker_id: str, outcomes: Sequence[AttemptOutcome], now: float
    ) -> list[EndpointHealth]:
        self._fail_if("record_outcomes")
        self.writes.append(list(outcomes))
        return [
            EndpointHealth(o.endpoint_id, "org", EndpointStatus.ACTIVE, 0, None, now)
            for o in outcomes
        ]

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
        *,
        now: float,
    ) -> int:
        if self.release_gate is not None:
            await self.release_gate.wait()
        self._fail_if("release")
        ids = list(delivery_ids)
        dues = _dues(ids, next_attempt_at)
        for due in sorted(set(dues)):  # as (ids, due) groups, in due order
            self.released.append(([i for i, d in zip(ids, dues, strict=True) if d == due], due))
        return len(ids)

    async def pause_endpoint(
        self, organization_id: str, endpoint_id: str, reason: str, now: float
    ) -> bool:
        self._fail_if("pause_endpoint")
        self.paused.append((endpoint_id, reason))
        return self.pause_changes

    async def worker_seen(
        self, worker_id: str, started_at: float, now: float, *, forget_before: float
    ) -> None:
        self.seen.append((worker_id, now))

    async def worker_gone(self, worker_id: str) -> None:
        self.gone.append(worker_id)

    async def blocked_subjects(self, cutoff: float, limit: int) -> list[BlockedSubject]:
        return []  # nothing ordered here (tests/integration/delivery covers the watch)

    async def mark_blocked_reported(self, delivery_ids: Sequence[str], now: float) -> int:
        return 0

    async def add_endpoint_stats(
        self, hours: Sequence[EndpointHour], *, forget_before: float
    ) -> None:
        self._fail_if("add_endpoint_stats")
        self.stats.extend(hours)

    async def purge_history(self, cutoff: float, batch_size: int) -> int:
        return 0  # the unit tests run with retention off

    async def purge_audit(self, cutoff: float, batch_size: int) -> int:
        return 0  # nor do they write an audit trail

    async def make_history_partitions(self, now: float, days: int) -> int:
        return 0  # one list of deliveries, like SQLite

    async def drop_history_partitions(self, cutoff: float) -> list[str]:
        return []

    def _fail_if(self, operation: str) -> None:
        if operation in self.failing:
            raise StoreError(f"{operation} failed (as the test asked)")


class DueStore(FakeStore):
    """In memory, like the real store: claims only due, unleased deliveries (oldest first);
    release makes them due again at `next_attempt_at`."""

    def __init__(self, claims: list[ClaimedDelivery], clock: Clock) -> None:
        super().__init__([])
        self.clock = clock
        self.due: dict[str, tuple[float, int, ClaimedDelivery]] = {
            c.delivery.id: (clock(), n, c) for n, c in enumerate(claims)
        }
        self.claimed_ids: list[str] = []
        self.by_id = {c.delivery.id: c for c in claims}

    def add(self, claim: ClaimedDelivery) -> None:
        self.by_id[claim.delivery.id] = claim
        self.due[claim.delivery.id] = (self.clock(), len(self.due) + 10_000, claim)

    async def claim_due(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        limit: int,
        due_from: float = -math.inf,
    ) -> list[ClaimedDelivery]:
        # the base records the limit and the floor (its own list of claims is empty)
        await super().claim_due(worker_id, now, lease_seconds, limit, due_from)
        ready = sorted(v for v in self.due.values() if v[0] <= now)[:limit]
        for _, _, claim in ready:
            del self.due[claim.delivery.id]
            self.claimed_ids.append(claim.delivery.id)
        return [claim for _, _, claim in ready]

    async def release(
        self,
        worker_id: str,
        delivery_ids: Sequence[str],
        next_attempt_at: float | Sequence[float],
        *,
        now: float,
    ) -> int:
        await super().release(worker_id, delivery_ids, next_attempt_at, now=now)
        dues = _dues(delivery_ids, next_attempt_at)
        for delivery_id, due in zip(delivery_ids, dues, strict=True):
            n = int(delivery_id.split("_")[1])
            self.due[delivery_id] = (due, n, self.by_id[delivery_id])
        return len(delivery_ids)


class FakeSender:
    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.sent: list[str] = []
        self.closed = False

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.sent.append(headers["X-Tidings-Delivery-Id"])
        if self.gate is not None:
            await self.gate.wait()
        return SendResult(200, None, "ok", 1.0)

    async def close(self) -> None:
        self.closed = True


class NoPublisher:
    async def publish(
        self, envelope: dict[str, Any], *, idempotency_key: str | None = None
    ) -> object:
        raise AssertionError("no meta event expected")


# What the worker unit tests change from the defaults: no retention, a short idle poll, a short
# grace at shutdown.
TEST_SETTINGS = WorkerSettings(
    worker_id="w1", retention_days=0, poll_interval_seconds=0.01, shutdown_grace_seconds=0.2
)


def make_worker(
    store: FakeStore,
    sender: FakeSender,
    *,
    clock: Clock = system_clock,
    **settings: Any,
) -> Worker:
    """A worker over the fakes, with TEST_SETTINGS changed by `settings`."""
    return Worker(
        store,
        EMPTY_CATALOG,
        NoPublisher(),
        sender,
        dataclasses.replace(TEST_SETTINGS, **settings),
        clock=clock,
        metrics=DeliveryMetrics(),
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(loop(), timeout)
