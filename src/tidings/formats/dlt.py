"""The `dlt` wire format: the notification body of the DLT events reference, signed with
``X-DLT-Signature: <base64 HMAC-SHA256(secret, body)>`` (one per valid secret, comma-joined).

``notification_type`` is the part of the type after the workflow
(``onboarding.requirementsIDV`` -> ``requirementsIDV``); ``webhook.*`` meta types keep their
full name. The owner/external/entitlement fields come from the event's attributes (null when
absent, e.g. meta events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from tidings.models import Event
from tidings.receiver.wire import DLT_ENVELOPE_FIELDS
from tidings.signing import sign_dlt

SIGNATURE_HEADER = "X-DLT-Signature"


def notification_type(type_name: str) -> str:
    if type_name.startswith("webhook.") or "." not in type_name:
        return type_name
    return type_name.split(".", 1)[1]


def created_at_seconds(ts: float) -> str:
    """RFC 3339 in whole seconds, as in the seed: 2024-10-29T12:15:42Z."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_body(event: Event, data: Any, schema_version: int) -> bytes:
    attrs = event.attributes or {}
    payload: dict[str, Any] = {
        "notification_id": event.id,
        "created_at": created_at_seconds(event.created_at),
    }
    for name in DLT_ENVELOPE_FIELDS:
        payload[name] = attrs.get(name)
    payload["notification_type"] = notification_type(event.type)
    payload["details"] = data
    return orjson.dumps(payload)


def signature_headers(
    event: Event, body: bytes, secrets: Sequence[str], now: float
) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign_dlt(secrets, body)}
