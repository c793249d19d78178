"""One attempt (delivery/attempt.py): what an answer leads to (`decide_outcome`, pure), and the
`Attempter`'s contract: bodies rendered once per event, format and version and shared by a
fan-out, in the version the delivery is owed, headers signed for this attempt, and a delivery
that cannot be rendered turned into a failed attempt without a send."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from tidings.catalog import Catalog
from tidings.delivery.attempt import Attempter, decide_outcome
from tidings.delivery.sender import SendResult
from tidings.delivery.settings import WorkerSettings
from tidings.models import DeliveryStatus

from .delivery_fakes import EMPTY_CATALOG, make_claim, result

SCHEDULE = (10.0, 20.0, 30.0)


@pytest.mark.parametrize(
    ("status", "attempts_before", "expected", "next_in"),
    [
        (200, 0, DeliveryStatus.SUCCEEDED, None),
        (204, 3, DeliveryStatus.SUCCEEDED, None),
        (500, 0, DeliveryStatus.PENDING, 10.0),
        (None, 1, DeliveryStatus.PENDING, 20.0),
        (302, 2, DeliveryStatus.PENDING, 30.0),
        (500, 3, DeliveryStatus.FAILED, None),
        (410, 0, DeliveryStatus.PENDING, 10.0),
    ],
)
def test_decide_outcome(
    status: int | None,
    attempts_before: int,
    expected: DeliveryStatus,
    next_in: float | None,
) -> None:
    claim = make_claim(1, attempt_count=attempts_before)
    finished = decide_outcome(
        claim,
        result(status),
        1000.0,
        retry_schedule=SCHEDULE,
        jitter_fraction=0.0,
        rng=random.Random(1),
    )
    out = finished.outcome
    assert out.status == expected
    assert out.attempt.number == attempts_before + 1
    assert out.success == (status is not None and 200 <= status < 300)
    assert finished.gone == (status == 410)
    if next_in is None:
        assert out.next_attempt_at is None
    else:
        assert out.next_attempt_at == 1000.0 + next_in


def test_retry_after_only_on_429_and_503_and_only_when_longer() -> None:
    def next_at(status: int, header: str) -> float | None:
        return decide_outcome(
            make_claim(1),
            result(status, header),
            0.0,
            retry_schedule=SCHEDULE,
            jitter_fraction=0.0,
            rng=random.Random(1),
        ).outcome.next_attempt_at

    assert next_at(429, "120") == 120.0
    assert next_at(503, "120") == 120.0
    assert next_at(500, "120") == 10.0
    assert next_at(429, "1") == 10.0


class RecordingSender:
    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.requests.append((url, body, dict(headers)))
        return SendResult(200, None, "ok", 1.0)

    async def close(self) -> None:
        pass


def attempter(
    catalog: Catalog = EMPTY_CATALOG, **settings: Any
) -> tuple[Attempter, RecordingSender]:
    sender = RecordingSender()
    worker_settings = WorkerSettings(worker_id="w1", jitter_fraction=0.0, **settings)
    return Attempter(catalog, sender, worker_settings, random.Random(1)), sender


def test_a_fan_out_shares_one_rendered_body() -> None:
    att, _ = attempter()
    first = make_claim(1, endpoint_id="ep_a")
    second = dataclasses.replace(
        make_claim(1, endpoint_id="ep_b"),
        delivery=dataclasses.replace(first.delivery, id="dlv_other", endpoint_id="ep_b"),
    )
    assert att.body(first, 1) is att.body(second, 1)
    assert att.body(make_claim(2), 1) is not att.body(first, 1)  # another event


def test_the_body_is_rendered_in_the_version_the_delivery_is_owed() -> None:
    catalog = Catalog.load_default()
    att, _ = attempter(catalog)
    claim = make_claim(1)
    data = {
        "orderId": "ord_1",
        "previousStatus": "INCOMPLETE",
        "status": "VALID",
        "reason": "checked",
        "changedBy": "someone",
        "changedAt": "2024-11-02T08:01:00Z",
    }
    claim = dataclasses.replace(
        claim, event=dataclasses.replace(claim.event, schema_version=2, data=data)
    )
    assert claim.delivery.schema_version == 1
    v1 = orjson.loads(att.body(claim, 1))
    assert v1["schemaVersion"] == 1
    assert v1["data"] == {"orderId": "ord_1", "previousStatus": "INCOMPLETE", "status": "VALID"}
    assert orjson.loads(att.body(claim, 2))["data"] == data


async def test_send_signs_this_attempt_and_sends_the_rendered_body() -> None:
    att, sender = attempter()
    claim = make_claim(7, attempt_count=2)
    answer = await att.send(claim, 1_700_000_500.0)
    assert answer.status_code == 200
    [(url, body, headers)] = sender.requests
    assert url == claim.endpoint.url
    assert body is att.body(claim, 1)
    assert headers["X-Tidings-Delivery-Id"] == "dlv_7"
    assert headers["X-Tidings-Attempt"] == "3"
    assert headers["X-Novatrade-Signature"].startswith("t=1700000500,v1=")


async def test_a_delivery_that_cannot_be_rendered_is_a_failed_attempt_not_a_send() -> None:
    att, sender = attempter()
    claim = make_claim(1)
    claim = dataclasses.replace(claim, endpoint=dataclasses.replace(claim.endpoint, format="nope"))
    answer = await att.send(claim, 1_700_000_500.0)
    assert answer.status_code is None
    assert answer.error is not None and answer.error.startswith("ValueError")
    assert sender.requests == []
    decided = att.decide(claim, answer, 1_700_000_500.0)
    assert decided.outcome.status == DeliveryStatus.PENDING  # retried like any failure


def test_decide_uses_the_workers_schedule() -> None:
    att, _ = attempter(retry_schedule=(5.0,))
    first = att.decide(make_claim(1), result(500), 100.0)
    assert first.outcome.next_attempt_at == 105.0
    last = att.decide(make_claim(1, attempt_count=1), result(500), 100.0)
    assert last.outcome.status == DeliveryStatus.FAILED
