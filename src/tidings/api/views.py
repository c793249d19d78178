"""JSON views of the domain records as the API answers them (contract sections 2 and 7): events,
endpoints, secrets, deliveries and attempts. Times are RFC 3339 (UTC); field names are camelCase."""

from __future__ import annotations

from typing import Any

from tidings.clock import to_rfc3339
from tidings.models import Attempt, Delivery, Endpoint, EndpointSecret, Event
from tidings.services.endpoints import SigningSecrets


def iso(ts: float | None) -> str | None:
    return None if ts is None else to_rfc3339(ts)


def event_view(event: Event, warnings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The stored envelope as contract section 2 shows it, with `createdAt` and what the catalog
    flags in it (`Catalog.warnings`: an error code the reference does not know)."""
    return {
        "id": event.id,
        "type": event.type,
        "schemaVersion": event.schema_version,
        "source": event.source,
        "organizationUuid": event.organization_id,
        "partnerUuid": event.partner_uuid,
        "subject": event.subject,
        "correlationId": event.correlation_id,
        "attributes": event.attributes,
        "data": event.data,
        "createdAt": to_rfc3339(event.created_at),
        "erasedAt": iso(event.erased_at),
        "warnings": warnings or [],
    }


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint's configuration and health. The secret is not part of it: it is shown on
    creation and by GET /v1/endpoints/{id}/secret only."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "status": str(endpoint.status),
        "pauseReason": endpoint.pause_reason,
        "eventTypes": list(endpoint.event_types),
        "format": endpoint.format,
        "partnerIds": None if endpoint.partner_ids is None else list(endpoint.partner_ids),
        "acceptedSchemaVersions": (
            None
            if endpoint.accepted_schema_versions is None
            else list(endpoint.accepted_schema_versions)
        ),
        "sources": list(endpoint.sources),
        "description": endpoint.description,
        "headers": dict(endpoint.headers),
        "rateLimitPerSecond": endpoint.rate_limit_per_second,
        "traceContext": endpoint.trace_context,
        "filter": None if endpoint.filter is None else endpoint.filter.spec,
        "recordFiltered": endpoint.record_filtered,
        "ordering": endpoint.ordering,
        "failureStreak": endpoint.failure_streak,
        "failingSince": iso(endpoint.failing_since),
        "lastSuccessAt": iso(endpoint.last_success_at),
        "createdAt": iso(endpoint.created_at),
        "updatedAt": iso(endpoint.updated_at),
    }


def secret_view(secret: EndpointSecret) -> dict[str, Any]:
    return {
        "secret": secret.secret,
        "createdAt": iso(secret.created_at),
        "expiresAt": iso(secret.expires_at),
    }


def secrets_view(secrets: SigningSecrets) -> dict[str, Any]:
    """The current secret, and every secret that signs now (current first, then those still in
    their rotation grace period, with their `expiresAt`)."""
    return {"secret": secrets.current, "secrets": [secret_view(s) for s in secrets.signing]}


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "eventId": delivery.event_id,
        "endpointId": delivery.endpoint_id,
        "status": str(delivery.status),
        "schemaVersion": delivery.schema_version,
        "attemptCount": delivery.attempt_count,
        "nextAttemptAt": iso(delivery.next_attempt_at),
        "lastAttemptAt": iso(delivery.last_attempt_at),
        "createdAt": iso(delivery.created_at),
        "updatedAt": iso(delivery.updated_at),
        "skipReason": delivery.skip_reason,
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error,
        "series": delivery.series,
        "sequence": delivery.sequence,
        "subject": delivery.subject,
        "previousEventId": delivery.previous_event_id,
        "ordered": delivery.ordered,
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "series": attempt.series,
        "startedAt": iso(attempt.started_at),
        "durationMs": attempt.duration_ms,
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "responseExcerpt": attempt.response_excerpt,
    }
