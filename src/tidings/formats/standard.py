"""The `standard` wire format (Standard Webhooks): body ``{"type","timestamp","data"}``,
headers ``webhook-id`` (the event id: stable across retries, so receivers deduplicate),
``webhook-timestamp`` (the send time, unix seconds) and ``webhook-signature``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tidings.clock import to_rfc3339
from tidings.models import Event
from tidings.signing import sign_standard


def render_body(event: Event, data: Any, schema_version: int) -> bytes:
    return orjson.dumps(
        {"type": event.type, "timestamp": to_rfc3339(event.created_at), "data": data}
    )


def signature_headers(
    event: Event, body: bytes, secrets: Sequence[str], now: float
) -> dict[str, str]:
    ts = int(now)
    return {
        "webhook-id": event.id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(secrets, event.id, ts, body),
    }
