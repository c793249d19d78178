"""The system at a glance, for the operator (platform keys): deliveries and endpoints by status,
the backlog due now, deliveries made per minute over the last hour, the endpoints failing
longest, and the workers seen in the last minute. The console's overview shows it; /metrics
reads the same store counts for Prometheus."""

from __future__ import annotations

from dataclasses import dataclass, field

from tidings.auth import Actor, require_platform
from tidings.models import DeliveryStatus, EndpointStatus
from tidings.services.deps import Deps

PER_MINUTE_SPAN = 60
FAILING_SHOWN = 10
WORKERS_SEEN_SECONDS = 60.0  # four presence intervals (delivery.presence)


@dataclass(frozen=True, slots=True)
class FailingEndpoint:
    organization_id: str
    endpoint_id: str
    failure_streak: int  # failed attempts in a row


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    worker_id: str
    started_at: float
    last_seen_at: float


@dataclass(frozen=True, slots=True)
class SystemOverview:
    deliveries_by_status: dict[str, int]  # every DeliveryStatus, 0 when none
    endpoints_by_status: dict[str, int]  # every EndpointStatus, 0 when none
    due_now: int
    oldest_due_seconds: float  # how long the oldest due delivery has waited (0 when none)
    # (minute start, deliveries created in it) for each of the last PER_MINUTE_SPAN minutes,
    # oldest first, the current (partial) minute last
    deliveries_per_minute: list[tuple[float, int]] = field(default_factory=list)
    failing: list[FailingEndpoint] = field(default_factory=list)  # longest streak first
    # workers that said they were alive in the last WORKERS_SEEN_SECONDS, oldest started first
    workers: list[WorkerSeen] = field(default_factory=list)


async def system_overview(deps: Deps, actor: Actor) -> SystemOverview:
    require_platform(actor)
    now = deps.clock()
    deliveries = await deps.store.count_deliveries_by_status()
    endpoints = await deps.store.count_endpoints_by_status()
    backlog = await deps.store.backlog_stats(now)
    oldest = 0.0 if backlog.oldest_due_at is None else max(0.0, now - backlog.oldest_due_at)
    this_minute = int(now // 60)
    first = this_minute - PER_MINUTE_SPAN + 1
    made = await deps.store.deliveries_per_minute(first * 60.0)
    per_minute = [(m * 60.0, made.get(m, 0)) for m in range(first, this_minute + 1)]
    failing = [
        FailingEndpoint(org, endpoint, streak)
        for org, endpoint, streak in await deps.store.worst_endpoints(FAILING_SHOWN)
    ]
    return SystemOverview(
        deliveries_by_status={str(s): deliveries.get(str(s), 0) for s in DeliveryStatus},
        endpoints_by_status={str(s): endpoints.get(str(s), 0) for s in EndpointStatus},
        due_now=backlog.due,
        oldest_due_seconds=oldest,
        deliveries_per_minute=per_minute,
        failing=failing,
        workers=[
            WorkerSeen(*seen) for seen in await deps.store.workers_seen(now - WORKERS_SEEN_SECONDS)
        ],
    )
