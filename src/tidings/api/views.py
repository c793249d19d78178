"""JSON views of stored objects shared by several routers."""

from __future__ import annotations

from typing import Any

from tidings.clock import to_rfc3339
from tidings.models import Event


def event_view(event: Event) -> dict[str, Any]:
    """The stored envelope as contract section 2 shows it, with `createdAt`."""
    return {
        "id": event.id,
        "type": event.type,
        "schemaVersion": event.schema_version,
        "source": event.source,
        "organizationUuid": event.organization_id,
        "partnerUuid": event.partner_uuid,
        "subject": event.subject,
        "attributes": event.attributes,
        "data": event.data,
        "createdAt": to_rfc3339(event.created_at),
    }


def iso(ts: float | None) -> str | None:
    return None if ts is None else to_rfc3339(ts)
