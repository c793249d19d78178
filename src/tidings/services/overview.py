"""The system at a glance, for the operator (platform keys): deliveries and endpoints by status
and the backlog due now. The console's overview shows it; /metrics reads the same store counts
for Prometheus."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.auth import Actor, require_platform
from tidings.models import DeliveryStatus, EndpointStatus
from tidings.services.deps import Deps


@dataclass(frozen=True, slots=True)
class SystemOverview:
    deliveries_by_status: dict[str, int]  # every DeliveryStatus, 0 when none
    endpoints_by_status: dict[str, int]  # every EndpointStatus, 0 when none
    due_now: int
    oldest_due_seconds: float  # how long the oldest due delivery has waited (0 when none)


async def system_overview(deps: Deps, actor: Actor) -> SystemOverview:
    require_platform(actor)
    now = deps.clock()
    deliveries = await deps.store.count_deliveries_by_status()
    endpoints = await deps.store.count_endpoints_by_status()
    backlog = await deps.store.backlog_stats(now)
    oldest = 0.0 if backlog.oldest_due_at is None else max(0.0, now - backlog.oldest_due_at)
    return SystemOverview(
        deliveries_by_status={str(s): deliveries.get(str(s), 0) for s in DeliveryStatus},
        endpoints_by_status={str(s): endpoints.get(str(s), 0) for s in EndpointStatus},
        due_now=backlog.due,
        oldest_due_seconds=oldest,
    )
