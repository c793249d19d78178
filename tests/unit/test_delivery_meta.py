"""Meta events: envelopes valid against the shipped catalog, idempotency keys, publishing
that retries store failures and never raises."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.catalog import Catalog
from tidings.delivery import meta
from tidings.errors import BadRequest
from tidings.models import EndpointHealth, EndpointStatus

from .delivery_fakes import make_claim

CATALOG = Catalog.load_default()


@pytest.mark.parametrize("failing_since", [None, 1_700_000_000.5])
@pytest.mark.parametrize("reason", ["consecutive_failures", "failing_too_long", "gone_410"])
def test_auto_paused_envelope_is_valid(reason: str, failing_since: float | None) -> None:
    claim = make_claim(1)
    health = EndpointHealth("ep_1", "org", EndpointStatus.ACTIVE, 20, failing_since, None)
    envelope, key = meta.endpoint_auto_paused(
        CATALOG, claim.endpoint, health, reason, 1_700_000_100.0
    )
    assert envelope["type"] == "webhook.endpoint_auto_paused"
    assert envelope["source"] == "SYSTEM"
    assert envelope["organizationUuid"] == "org"
    assert (
        CATALOG.validate_data(envelope["type"], envelope["schemaVersion"], envelope["data"]) == []
    )
    assert envelope["data"]["endpointId"] == "ep_1"
    _, same_key = meta.endpoint_auto_paused(
        CATALOG, claim.endpoint, health, reason, 1_700_000_100.0
    )
    assert same_key == key


@pytest.mark.parametrize(
    ("code", "error"), [(503, None), (None, "TimeoutError: no answer in 15 s"), (999, None)]
)
def test_failed_terminal_envelope_is_valid(code: int | None, error: str | None) -> None:
    claim = make_claim(1, attempt_count=9)
    envelope, key = meta.delivery_failed_terminal(
        CATALOG,
        claim.delivery,
        claim.event,
        claim.endpoint,
        attempts=10,
        last_status_code=code,
        last_error=error,
        failed_at=1_700_000_100.0,
    )
    assert (
        CATALOG.validate_data(envelope["type"], envelope["schemaVersion"], envelope["data"]) == []
    )
    assert key.endswith(f"{claim.delivery.id}:{claim.delivery.series}")
    assert envelope["data"]["endpointId"] == claim.endpoint.id


class FlakyPublisher:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[str | None] = []

    async def publish(self, envelope: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.calls.append(idempotency_key)
        if len(self.calls) <= self.failures:
            raise self.error
        return None


async def test_publish_meta_retries_store_failures_with_the_same_key() -> None:
    publisher = FlakyPublisher(2, RuntimeError("database went away"))
    assert await meta.publish_meta(publisher, {"type": "webhook.x"}, "k1", backoff_seconds=0)
    assert publisher.calls == ["k1", "k1", "k1"]


async def test_publish_meta_gives_up_quietly() -> None:
    publisher = FlakyPublisher(5, RuntimeError("down"))
    assert not await meta.publish_meta(publisher, {"type": "webhook.x"}, "k", backoff_seconds=0)
    assert len(publisher.calls) == meta.PUBLISH_TRIES
    refused = FlakyPublisher(5, BadRequest("invalid"))
    assert not await meta.publish_meta(refused, {"type": "webhook.x"}, "k", backoff_seconds=0)
    assert len(refused.calls) == 1
