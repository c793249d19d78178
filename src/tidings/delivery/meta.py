"""The `webhook.*` meta events the worker raises, built as ordinary envelopes and published
through the same `Publisher` as any other event (source SYSTEM).

Each carries `endpointId`, so the planner never delivers it to the endpoint it is about, and an
idempotency key, so publishing the same fact twice (a retried write) stores it once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from tidings.catalog import Catalog
from tidings.clock import to_rfc3339
from tidings.errors import ApiError
from tidings.models import BlockedSubject, Delivery, Endpoint, EndpointHealth, Event
from tidings.policies import PAUSE_GONE

log = logging.getLogger("tidings.delivery.meta")

ENDPOINT_AUTO_PAUSED = "webhook.endpoint_auto_paused"
# The pause reason for a 410 answer (defined with the other pause reasons in policies).
PAUSE_REASON_GONE = PAUSE_GONE
DELIVERY_FAILED_TERMINAL = "webhook.delivery_failed_terminal"
SUBJECT_BLOCKED = "webhook.subject_blocked"
MAX_ERROR_CHARS = 500
PUBLISH_TRIES = 3
PUBLISH_BACKOFF_SECONDS = 0.2


class MetaPublisher(Protocol):
    """The part of `tidings.publishing.Publisher` the worker uses (what it answers is not
    read)."""

    async def publish(
        self, envelope: dict[str, Any], *, idempotency_key: str | None = None
    ) -> object: ...


def _latest_version(catalog: Catalog, type_name: str) -> int:
    entry = catalog.get(type_name)
    return entry.latest_version if entry is not None else 1


def _envelope(
    catalog: Catalog,
    type_name: str,
    organization_id: str,
    subject: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "type": type_name,
        "schemaVersion": _latest_version(catalog, type_name),
        "source": "SYSTEM",
        "organizationUuid": organization_id,
        "partnerUuid": None,
        "subject": subject,
        "data": data,
    }


def endpoint_auto_paused(
    catalog: Catalog,
    endpoint: Endpoint,
    health: EndpointHealth | None,
    reason: str,
    paused_at: float,
) -> tuple[dict[str, Any], str]:
    """(envelope, idempotency key) of `webhook.endpoint_auto_paused`."""
    streak = health.failure_streak if health is not None else endpoint.failure_streak
    failing_since = health.failing_since if health is not None else endpoint.failing_since
    data: dict[str, Any] = {
        "endpointId": endpoint.id,
        "url": endpoint.url,
        "reason": reason,
        "failureStreak": streak,
        "failingSince": to_rfc3339(failing_since) if failing_since is not None else None,
        "pausedAt": to_rfc3339(paused_at),
    }
    key = f"{ENDPOINT_AUTO_PAUSED}:{endpoint.id}:{paused_at!r}"
    return _envelope(
        catalog, ENDPOINT_AUTO_PAUSED, endpoint.organization_id, endpoint.id, data
    ), key


def delivery_failed_terminal(
    catalog: Catalog,
    delivery: Delivery,
    event: Event,
    endpoint: Endpoint,
    *,
    attempts: int,
    last_status_code: int | None,
    last_error: str | None,
    failed_at: float,
) -> tuple[dict[str, Any], str]:
    """(envelope, idempotency key) of `webhook.delivery_failed_terminal`; the key is the
    delivery id and its attempt series, so a replayed series may fail (and tell) again."""
    data: dict[str, Any] = {
        "deliveryId": delivery.id,
        "eventId": event.id,
        "eventType": event.type,
        "endpointId": endpoint.id,
        "attempts": attempts,
        "lastStatusCode": (
            last_status_code
            if last_status_code is not None and 100 <= last_status_code <= 599
            else None
        ),
        "lastError": last_error[:MAX_ERROR_CHARS] if last_error is not None else None,
        "failedAt": to_rfc3339(failed_at),
    }
    key = f"{DELIVERY_FAILED_TERMINAL}:{delivery.id}:{delivery.series}"
    return _envelope(
        catalog, DELIVERY_FAILED_TERMINAL, event.organization_id, endpoint.id, data
    ), key


def subject_blocked(
    catalog: Catalog, blocked: BlockedSubject, blocked_at: float
) -> tuple[dict[str, Any], str]:
    """(envelope, idempotency key) of `webhook.subject_blocked`; the key is the blocking
    delivery and its attempt series, so a subject is told of once per blockage."""
    code = blocked.last_status_code
    data: dict[str, Any] = {
        "endpointId": blocked.endpoint_id,
        "subject": blocked.subject,
        "blockingDeliveryId": blocked.delivery_id,
        "blockingEventId": blocked.event_id,
        "attempts": blocked.attempts,
        "lastStatusCode": code if code is not None and 100 <= code <= 599 else None,
        "lastError": blocked.last_error[:MAX_ERROR_CHARS] if blocked.last_error else None,
        "waiting": blocked.waiting,
        "waitingSince": to_rfc3339(blocked.waiting_since),
        "blockedAt": to_rfc3339(blocked_at),
    }
    key = f"{SUBJECT_BLOCKED}:{blocked.delivery_id}:{blocked.series}"
    return _envelope(
        catalog, SUBJECT_BLOCKED, blocked.organization_id, blocked.endpoint_id, data
    ), key


async def publish_meta(
    publisher: MetaPublisher,
    envelope: dict[str, Any],
    idempotency_key: str,
    *,
    tries: int = PUBLISH_TRIES,
    backoff_seconds: float = PUBLISH_BACKOFF_SECONDS,
) -> bool:
    """Publish one meta event; a failure is logged, never raised into the delivery path.
    Store errors are tried again (the idempotency key makes a repeat harmless); a refusal
    of the envelope itself (ApiError) is not."""
    for attempt in range(1, tries + 1):
        try:
            await publisher.publish(envelope, idempotency_key=idempotency_key)
        except ApiError:
            log.exception("meta event refused", extra=_log_extra(envelope, "delivery.meta_refused"))
            return False
        except Exception:
            if attempt == tries:
                log.exception(
                    "meta event not published", extra=_log_extra(envelope, "delivery.meta_failed")
                )
                return False
            await asyncio.sleep(backoff_seconds * attempt)
        else:
            return True
    return False


def _log_extra(envelope: dict[str, Any], action: str) -> dict[str, Any]:
    return {
        "action": action,
        "type": envelope.get("type"),
        "organization_id": envelope.get("organizationUuid"),
    }


__all__ = [
    "DELIVERY_FAILED_TERMINAL",
    "ENDPOINT_AUTO_PAUSED",
    "PAUSE_REASON_GONE",
    "SUBJECT_BLOCKED",
    "MetaPublisher",
    "delivery_failed_terminal",
    "endpoint_auto_paused",
    "publish_meta",
    "subject_blocked",
]
