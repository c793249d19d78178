"""The worker's counters (delivery/metrics.py): attempts by status class."""

from __future__ import annotations

import pytest

from tidings.delivery.metrics import status_class


@pytest.mark.parametrize(
    ("code", "cls"), [(200, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (None, "error")]
)
def test_status_class(code: int | None, cls: str) -> None:
    assert status_class(code) == cls


def _samples(metrics: object, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client import CollectorRegistry

    registry: CollectorRegistry = metrics.registry  # type: ignore[attr-defined]
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_per_endpoint_series_are_bounded_the_rest_count_as_other() -> None:
    from tidings.delivery.metrics import DeliveryMetrics

    metrics = DeliveryMetrics(endpoints=2)
    for endpoint_id, code in [("ep_a", 200), ("ep_b", 503), ("ep_c", 200), ("ep_d", None)]:
        metrics.observe_attempt(code, 12.0, endpoint_id)
    metrics.observe_attempt(200, 3.0, "ep_a")  # a labelled endpoint stays labelled
    metrics.observe_attempt(200, 3.0, "ep_c")  # an unlabelled one stays "other"
    attempts = {
        k: v for k, v in _samples(metrics, "tidings_endpoint_attempts_total").items() if v > 0
    }
    assert attempts == {
        (("endpoint_id", "ep_a"), ("status_class", "2xx")): 2.0,
        (("endpoint_id", "ep_b"), ("status_class", "5xx")): 1.0,
        (("endpoint_id", "other"), ("status_class", "2xx")): 2.0,
        (("endpoint_id", "other"), ("status_class", "error")): 1.0,
    }
    counts = _samples(metrics, "tidings_endpoint_attempt_duration_seconds_count")
    assert counts == {
        (("endpoint_id", "ep_a"),): 2.0,
        (("endpoint_id", "ep_b"),): 1.0,
        (("endpoint_id", "other"),): 3.0,
    }
    # the totals count every attempt, labelled or not
    assert _samples(metrics, "tidings_delivery_attempt_duration_seconds_count") == {(): 6.0}


def test_per_endpoint_series_can_be_turned_off() -> None:
    from tidings.delivery.metrics import DeliveryMetrics

    metrics = DeliveryMetrics(endpoints=0)
    metrics.observe_attempt(200, 5.0, "ep_a")
    assert _samples(metrics, "tidings_endpoint_attempts_total") == {}
    assert _samples(metrics, "tidings_delivery_attempt_duration_seconds_count") == {(): 1.0}
