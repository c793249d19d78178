"""Prometheus metrics of delivery (prometheus-client, tidings' own registry).

Counters and the latency histogram are updated by the worker as it goes (`DeliveryMetrics`).
Gauges that describe the whole system (backlog, delivery lag, endpoints and deliveries by
status, the worst failure streaks) are read from the store at scrape time by `render`, so every
API process answers the same numbers whichever worker did the work.

Per endpoint, with bounded label cardinality (`TIDINGS_METRICS_ENDPOINTS`, default 50):
- the worker's attempts by status class and its attempt-duration histogram carry an
  `endpoint_id` label for the first N endpoints this process attempts; any endpoint after those
  is counted under `endpoint_id="other"`, so a process never holds more than N + 1 series per
  metric however many endpoints it serves;
- at scrape time, the N endpoints with the most deliveries waiting get their pending and held
  counts and the seconds since their last success (the figures an operator alerts on: a backlog
  that grows, an endpoint that has not succeeded for an hour).
0 turns the per-endpoint series off.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from tidings.config import METRICS_ENDPOINTS
from tidings.models import DeliveryStatus, EndpointStatus
from tidings.store.base import Store

OTHER_ENDPOINTS = "other"

WORST_ENDPOINTS = 10
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
OUTCOMES = ("succeeded", "failed", "retried", "held")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def status_class(status_code: int | None) -> str:
    """ "2xx".."5xx" for an HTTP answer; "error" for no answer (or anything outside 200-599)."""
    if status_code is None or not 200 <= status_code <= 599:
        return "error"
    return f"{status_code // 100}xx"


class _EndpointSeries:
    __slots__ = ("attempts", "latency")

    def __init__(self, attempts: dict[str, Counter], latency: Histogram) -> None:
        self.attempts = attempts
        self.latency = latency


class DeliveryMetrics:
    """The worker-side counters, in their own registry."""

    _shared: DeliveryMetrics | None = None

    def __init__(self, endpoints: int = METRICS_ENDPOINTS) -> None:
        self.endpoint_limit = endpoints
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
        self.endpoint_attempts = Counter(
            "tidings_endpoint_attempts",
            "HTTP attempts per endpoint by status class (the first TIDINGS_METRICS_ENDPOINTS "
            'endpoints this process attempts; the rest under endpoint_id="other").',
            ["endpoint_id", "status_class"],
            registry=self.registry,
        )
        self.endpoint_latency = Histogram(
            "tidings_endpoint_attempt_duration_seconds",
            "Duration of one HTTP attempt per endpoint (labelled like tidings_endpoint_attempts).",
            ["endpoint_id"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        # the labelled children, looked up once (this runs for every attempt)
        self._outcomes = {o: self.deliveries.labels(outcome=o) for o in OUTCOMES}
        self._classes = {c: self.attempts.labels(status_class=c) for c in STATUS_CLASSES}
        self._per_endpoint: dict[str, _EndpointSeries] = {}

    def _endpoint_series(self, endpoint_id: str) -> _EndpointSeries | None:
        series = self._per_endpoint.get(endpoint_id)
        if series is not None or self.endpoint_limit <= 0:
            return series
        label = endpoint_id if len(self._per_endpoint) < self.endpoint_limit else OTHER_ENDPOINTS
        series = self._per_endpoint.get(label)
        if series is None:
            series = _EndpointSeries(
                {c: self.endpoint_attempts.labels(label, c) for c in STATUS_CLASSES},
                self.endpoint_latency.labels(label),
            )
            if label == OTHER_ENDPOINTS:
                self._per_endpoint[OTHER_ENDPOINTS] = series
        if label != OTHER_ENDPOINTS:
            self._per_endpoint[endpoint_id] = series
        return series

    @classmethod
    def shared(cls, endpoints: int = METRICS_ENDPOINTS) -> DeliveryMetrics:
        """The process-wide instance (API and worker of one `tidings serve` share it); the
        first call's `endpoints` limit holds."""
        if cls._shared is None:
            cls._shared = cls(endpoints)
        return cls._shared

    def observe_attempt(
        self, status_code: int | None, duration_ms: float, endpoint_id: str | None = None
    ) -> None:
        klass = status_class(status_code)
        seconds = max(0.0, duration_ms) / 1000.0
        self._classes[klass].inc()
        self.latency.observe(seconds)
        if endpoint_id is not None:
            series = self._endpoint_series(endpoint_id)
            if series is not None:
                series.attempts[klass].inc()
                series.latency.observe(seconds)

    def observe_outcome(self, outcome: str) -> None:
        child = self._outcomes.get(outcome)
        (child if child is not None else self.deliveries.labels(outcome=outcome)).inc()


async def collect_store_gauges(
    store: Store, now: float, endpoint_series: int = METRICS_ENDPOINTS
) -> CollectorRegistry:
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
    if endpoint_series > 0:
        labels = ["organization_id", "endpoint_id"]
        pending = Gauge(
            "tidings_endpoint_pending",
            "Deliveries pending, for the TIDINGS_METRICS_ENDPOINTS endpoints with the most "
            "waiting.",
            labels,
            registry=registry,
        )
        held = Gauge(
            "tidings_endpoint_held",
            "Deliveries held by a pause, for the same endpoints.",
            labels,
            registry=registry,
        )
        since = Gauge(
            "tidings_endpoint_seconds_since_success",
            "Seconds since the endpoint's last successful attempt (since its creation when it "
            "never had one), for the same endpoints.",
            labels,
            registry=registry,
        )
        for b in await store.endpoint_backlogs(endpoint_series):
            pending.labels(b.organization_id, b.endpoint_id).set(b.pending)
            held.labels(b.organization_id, b.endpoint_id).set(b.held)
            last = b.last_success_at if b.last_success_at is not None else b.created_at
            since.labels(b.organization_id, b.endpoint_id).set(max(0.0, now - last))
    return registry


async def render(
    store: Store, now: float, metrics: DeliveryMetrics | None = None
) -> tuple[bytes, str]:
    """The `/metrics` body and its content type: the worker counters of this process plus the
    store gauges read now."""
    shown = metrics or DeliveryMetrics.shared()
    gauges = await collect_store_gauges(store, now, shown.endpoint_limit)
    return generate_latest(shown.registry) + generate_latest(gauges), CONTENT_TYPE_LATEST


__all__ = ["DeliveryMetrics", "collect_store_gauges", "render", "status_class"]
