"""The `novatrade` wire format: the envelope of the Novatrade seed, signed with
``X-Novatrade-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tidings.clock import to_rfc3339
from tidings.models import Event
from tidings.signing import sign_novatrade

SIGNATURE_HEADER = "X-Novatrade-Signature"


def render_body(event: Event, data: Any, schema_version: int) -> bytes:
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "schemaVersion": schema_version,
            "source": event.source,
            "organizationUuid": event.organization_id,
            "partnerUuid": event.partner_uuid,
            "createdAt": to_rfc3339(event.created_at),
            "data": data,
        }
    )


def signature_headers(
    event: Event, body: bytes, secrets: Sequence[str], now: float
) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign_novatrade(secrets, int(now), body)}
