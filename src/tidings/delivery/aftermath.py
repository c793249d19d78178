"""What a written batch of outcomes leads to (contract §6): endpoints paused, at once after a
410 or by the auto-pause rule on the failure bookkeeping the store answered, each raising
`webhook.endpoint_auto_paused`; deliveries out of attempts raising
`webhook.delivery_failed_terminal`; and the outcome counters (succeeded, failed, retried,
held).

A meta delivery never raises another meta event: it can pause its endpoint, but only a failed
non-meta delivery in the same batch tells the organization about the pause.
"""

from __future__ import annotations

import logging
from typing import Protocol

from tidings import policies
from tidings.catalog import Catalog
from tidings.delivery import meta
from tidings.delivery.attempt import Finished
from tidings.delivery.metrics import DeliveryMetrics
from tidings.delivery.settings import WorkerSettings
from tidings.models import DeliveryStatus, EndpointHealth, EndpointStatus
from tidings.store.base import StoreError

log = logging.getLogger("tidings.delivery.aftermath")


class PauseStore(Protocol):
    """The part of the store that pauses endpoints."""

    async def pause_endpoint(
        self, organization_id: str, endpoint_id: str, reason: str, now: float
    ) -> bool: ...


class Aftermath:
    """Applies what written outcomes lead to (see the module docstring); an `AfterWrite` of
    the outcome writer."""

    def __init__(
        self,
        store: PauseStore,
        catalog: Catalog,
        publisher: meta.MetaPublisher,
        metrics: DeliveryMetrics,
        settings: WorkerSettings,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._publisher = publisher
        self._metrics = metrics
        self._pause_after_failures = settings.pause_after_failures
        self._pause_after_seconds = settings.pause_after_seconds

    async def __call__(
        self, batch: list[Finished], health: list[EndpointHealth], now: float
    ) -> None:
        by_endpoint = {h.endpoint_id: h for h in health}
        paused = {h.endpoint_id for h in health if h.status == EndpointStatus.PAUSED}
        paused |= await self.apply_pauses(batch, by_endpoint, now)
        for f in batch:
            outcome = f.outcome
            if outcome.status == DeliveryStatus.SUCCEEDED:
                self._metrics.observe_outcome("succeeded")
            elif outcome.status == DeliveryStatus.FAILED:
                self._metrics.observe_outcome("failed")
                if not f.claim.delivery.is_meta:
                    await self.publish_terminal(f, now)
            elif outcome.endpoint_id in paused:
                self._metrics.observe_outcome("held")
            else:
                self._metrics.observe_outcome("retried")

    def pause_reason(self, health: EndpointHealth, gone: bool, now: float) -> str | None:
        """Why the endpoint is to be paused now, or None: a 410 first, then the auto-pause
        rule on its failure streak and how long it has been failing."""
        if gone:
            return meta.PAUSE_REASON_GONE
        return policies.should_pause(
            health.failure_streak,
            health.failing_since,
            now,
            pause_after_failures=self._pause_after_failures,
            pause_after_seconds=self._pause_after_seconds,
        )

    async def apply_pauses(
        self, batch: list[Finished], health: dict[str, EndpointHealth], now: float
    ) -> set[str]:
        """Pause endpoints that answered 410 or crossed the auto-pause rule; answers those this
        call paused. The meta event is raised only when a non-meta delivery failed there."""
        gone: set[str] = set()
        failed_non_meta: set[str] = set()
        for f in batch:
            if f.gone:
                gone.add(f.outcome.endpoint_id)
            if not f.outcome.success and not f.claim.delivery.is_meta:
                failed_non_meta.add(f.outcome.endpoint_id)
        endpoints = {f.outcome.endpoint_id: f.claim.endpoint for f in batch}
        paused_now: set[str] = set()
        for endpoint_id, h in health.items():
            if h.status != EndpointStatus.ACTIVE or endpoint_id not in endpoints:
                continue
            reason = self.pause_reason(h, endpoint_id in gone, now)
            if reason is None:
                continue
            try:
                changed = await self._store.pause_endpoint(
                    h.organization_id, endpoint_id, reason, now
                )
            except StoreError:
                log.warning("pause failed", exc_info=True, extra={"action": "worker.pause_failed"})
                continue
            if not changed:
                continue
            paused_now.add(endpoint_id)
            log.warning(
                "endpoint auto-paused",
                extra={
                    "action": "endpoint.auto_paused",
                    "endpoint_id": endpoint_id,
                    "organization_id": h.organization_id,
                    "reason": reason,
                    "failure_streak": h.failure_streak,
                },
            )
            if endpoint_id in failed_non_meta:
                envelope, key = meta.endpoint_auto_paused(
                    self._catalog, endpoints[endpoint_id], h, reason, now
                )
                await meta.publish_meta(self._publisher, envelope, key)
        return paused_now

    async def publish_terminal(self, f: Finished, now: float) -> None:
        """Tell the organization that a delivery failed for good."""
        outcome = f.outcome
        log.warning(
            "delivery failed for good",
            extra={
                "action": "delivery.failed_terminal",
                "delivery_id": outcome.delivery_id,
                "endpoint_id": outcome.endpoint_id,
            },
        )
        envelope, key = meta.delivery_failed_terminal(
            self._catalog,
            f.claim.delivery,
            f.claim.event,
            f.claim.endpoint,
            attempts=outcome.attempt.number,
            last_status_code=outcome.last_status_code,
            last_error=outcome.last_error,
            failed_at=now,
        )
        await meta.publish_meta(self._publisher, envelope, key)


__all__ = ["Aftermath", "PauseStore"]
