"""Prometheus metrics of delivery (prometheus-client, tidings' own registry).

Counters and the latency histogram are updated by the worker as it goes (`DeliveryMetrics`).
Gauges that describe the whole system (backlog, delivery lag, endpoints and deliveries by
status, the worst failure streaks) are read from the store at scrape time by `render`, so every
API process answers the same numbers whichever worker did the work.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from tidings.models import DeliveryStatus, EndpointStatus
from tidings.store.base import Store

WORST_ENDPOINTS = 10
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
OUTCOMES = ("succeeded", "failed", "retried", "held")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def status_class(status_code: int | None) -> str:
    """ "2xx".."5xx" for an HTTP answer; "error" for no answer (or anything outside 200-599)."""
    if status_code is None or not 200 <= status_code <= 599:
        return "error"
    return f"{status_code // 100}xx"


class DeliveryMetrics:
    """The worker-side counters, in their own registry."""

    _shared: DeliveryMetrics | None = None

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "tidings_deliveries",
            "Delivery attempts by what they led to: succeeded, failed (out of attempts), "
            "retried (scheduled again) or held (endpoint paused).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "tidings_delivery_attempts",
            "HTTP attempts by status class (2xx, 3xx, 4xx, 5xx, error = no answer).",
            ["status_class"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tidings_delivery_attempt_duration_seconds",
            "Duration of one HTTP attempt, from connect to the end of the bounded read.",
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        # the labelled children, looked up once (this runs for every attempt)
        self._outcomes = {o: self.deliveries.labels(outcome=o) for o in OUTCOMES}
        self._classes = {c: self.attempts.labels(status_class=c) for c in STATUS_CLASSES}

    @classmethod
    def shared(cls) -> DeliveryMetrics:
        """The process-wide instance (API and worker of one `tidings serve` share it)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def observe_attempt(self, status_code: int | None, duration_ms: float) -> None:
        self._classes[status_class(status_code)].inc()
        self.latency.observe(max(0.0, duration_ms) / 1000.0)

    def observe_outcome(self, outcome: str) -> None:
        child = self._outcomes.get(outcome)
        (child if child is not None else self.deliveries.labels(outcome=outcome)).inc()


async def collect_store_gauges(store: Store, now: float) -> CollectorRegistry:
    """A registry of gauges read from the store now."""
    registry = CollectorRegistry(auto_describe=True)
    backlog = await store.backlog_stats(now)
    Gauge(
        "tidings_delivery_backlog",
        "Pending deliveries that are due now.",
        registry=registry,
    ).set(backlog.due)
    lag = 0.0 if backlog.oldest_due_at is None else max(0.0, now - backlog.oldest_due_at)
    Gauge(
        "tidings_delivery_lag_seconds",
        "Age of the oldest due pending delivery (0 when nothing is due).",
        registry=registry,
    ).set(lag)
    by_status = await store.count_deliveries_by_status()
    deliveries = Gauge(
        "tidings_deliveries_by_status",
        "Deliveries kept, by status.",
        ["status"],
        registry=registry,
    )
    for status in DeliveryStatus:
        deliveries.labels(status=str(status)).set(by_status.get(str(status), 0))
    endpoint_counts = await store.count_endpoints_by_status()
    endpoints = Gauge(
        "tidings_endpoints_by_status",
        "Endpoints (not deleted), by status.",
        ["status"],
        registry=registry,
    )
    for ep_status in EndpointStatus:
        endpoints.labels(status=str(ep_status)).set(endpoint_counts.get(str(ep_status), 0))
    streaks = Gauge(
        "tidings_endpoint_failure_streak",
        f"Consecutive failed attempts of the {WORST_ENDPOINTS} endpoints failing the longest.",
        ["organization_id", "endpoint_id"],
        registry=registry,
    )
    for organization_id, endpoint_id, streak in await store.worst_endpoints(WORST_ENDPOINTS):
        streaks.labels(organization_id=organization_id, endpoint_id=endpoint_id).set(streak)
    return registry


async def render(
    store: Store, now: float, metrics: DeliveryMetrics | None = None
) -> tuple[bytes, str]:
    """The `/metrics` body and its content type: the worker counters of this process plus the
    store gauges read now."""
    counters = (metrics or DeliveryMetrics.shared()).registry
    gauges = await collect_store_gauges(store, now)
    return generate_latest(counters) + generate_latest(gauges), CONTENT_TYPE_LATEST


__all__ = ["DeliveryMetrics", "collect_store_gauges", "render", "status_class"]
