"""What a written batch leads to (delivery/aftermath.py): a 410 pauses its endpoint at once, the
auto-pause rule pauses on the health the store answered, each pause this worker made tells the
organization once (never because of a meta delivery), a delivery out of attempts raises
`webhook.delivery_failed_terminal` (never for a meta delivery), and the outcome counters."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tidings.catalog import Catalog
from tidings.delivery.aftermath import Aftermath
from tidings.delivery.attempt import Finished, decide_outcome
from tidings.delivery.metrics import DeliveryMetrics
from tidings.delivery.settings import WorkerSettings
from tidings.models import EndpointHealth, EndpointStatus

from .delivery_fakes import FakeStore, make_claim, result

CATALOG = Catalog.load_default()
NOW = 1_700_000_000.0


class Publisher:
    def __init__(self) -> None:
        self.published: list[tuple[dict[str, Any], str | None]] = []

    async def publish(
        self, envelope: dict[str, Any], *, idempotency_key: str | None = None
    ) -> object:
        self.published.append((envelope, idempotency_key))
        return None

    def types(self) -> list[str]:
        return [envelope["type"] for envelope, _ in self.published]


def done(
    n: int, status: int | None, *, attempts_before: int = 0, endpoint_id: str = "ep_1", **kw: Any
) -> Finished:
    return decide_outcome(
        make_claim(n, attempt_count=attempts_before, endpoint_id=endpoint_id, **kw),
        result(status),
        NOW,
        retry_schedule=(60.0,),
        jitter_fraction=0.0,
        rng=random.Random(1),
    )


def health(
    endpoint_id: str = "ep_1",
    *,
    streak: int = 1,
    status: EndpointStatus = EndpointStatus.ACTIVE,
    failing_since: float | None = NOW,
) -> EndpointHealth:
    return EndpointHealth(endpoint_id, "org", status, streak, failing_since, None)


def aftermath(store: FakeStore | None = None) -> tuple[Aftermath, FakeStore, Publisher, Any]:
    store = store if store is not None else FakeStore([])
    publisher = Publisher()
    metrics = DeliveryMetrics()
    settings = WorkerSettings(worker_id="w1", pause_after_failures=3, pause_after_seconds=3600.0)
    return Aftermath(store, CATALOG, publisher, metrics, settings), store, publisher, metrics


def counted(metrics: DeliveryMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value("tidings_deliveries_total", {"outcome": outcome})
    return value or 0.0


async def test_a_410_pauses_at_once_and_tells_the_organization() -> None:
    after, store, publisher, _ = aftermath()
    await after([done(1, 410)], [health(streak=1)], NOW)
    assert store.paused == [("ep_1", "gone_410")]
    [(envelope, key)] = publisher.published
    assert envelope["type"] == "webhook.endpoint_auto_paused"
    assert envelope["data"]["reason"] == "gone_410"
    assert key is not None and "ep_1" in key


@pytest.mark.parametrize(
    ("streak", "failing_since", "reason"),
    [(3, NOW, "consecutive_failures"), (1, NOW - 3600.0, "failing_too_long"), (2, NOW, None)],
)
async def test_the_auto_pause_rule_reads_the_health_the_store_answered(
    streak: int, failing_since: float, reason: str | None
) -> None:
    after, store, publisher, metrics = aftermath()
    await after([done(1, 500)], [health(streak=streak, failing_since=failing_since)], NOW)
    assert store.paused == ([("ep_1", reason)] if reason else [])
    assert publisher.types() == (["webhook.endpoint_auto_paused"] if reason else [])
    # the failed attempt's delivery is now held (paused) or scheduled again
    assert counted(metrics, "held" if reason else "retried") == 1


async def test_a_failing_meta_delivery_pauses_but_tells_no_one() -> None:
    after, store, publisher, _ = aftermath()
    await after([done(1, 410, is_meta=True)], [health()], NOW)
    assert store.paused == [("ep_1", "gone_410")]
    assert publisher.published == []


async def test_an_endpoint_paused_already_is_not_paused_or_told_again() -> None:
    store = FakeStore([])
    store.pause_changes = False  # another worker made the transition
    after, _, publisher, metrics = aftermath(store)
    await after([done(1, 410)], [health()], NOW)
    assert publisher.published == []
    paused_by_store = [health(status=EndpointStatus.PAUSED, streak=5)]
    await after([done(2, 500)], paused_by_store, NOW)
    assert publisher.published == []
    assert counted(metrics, "held") == 1


async def test_a_pause_the_store_refuses_is_logged_and_told_to_no_one() -> None:
    after, _, publisher, metrics = aftermath(FakeStore([], failing={"pause_endpoint"}))
    await after([done(1, 410)], [health()], NOW)
    assert publisher.published == []
    assert counted(metrics, "retried") == 1


async def test_a_delivery_out_of_attempts_raises_the_terminal_meta_event() -> None:
    after, _, publisher, metrics = aftermath()
    last = done(1, 500, attempts_before=1)
    meta_last = done(2, 500, attempts_before=1, endpoint_id="ep_2", is_meta=True)
    await after([last, meta_last], [health(), health("ep_2")], NOW)
    [(envelope, key)] = publisher.published
    assert envelope["type"] == "webhook.delivery_failed_terminal"
    assert envelope["data"]["deliveryId"] == "dlv_1"
    assert envelope["data"]["attempts"] == 2
    assert key == "webhook.delivery_failed_terminal:dlv_1:1"
    assert counted(metrics, "failed") == 2


async def test_successes_are_counted() -> None:
    after, store, publisher, metrics = aftermath()
    await after([done(1, 200), done(2, 204)], [health(streak=0, failing_since=None)], NOW)
    assert counted(metrics, "succeeded") == 2
    assert store.paused == [] and publisher.published == []
