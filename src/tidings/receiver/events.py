"""`WebhookEvent`: one delivery, parsed the same way whatever its wire format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidings.receiver.errors import UNKNOWN_FORMAT, WebhookPayloadError, WebhookVerificationError
from tidings.receiver.models import EventData, parse_data
from tidings.receiver.verify import (
    DEFAULT_TOLERANCE_SECONDS,
    FORMATS,
    STANDARD_ID_HEADER,
    HeadersLike,
    Secrets,
    _verify_keys,
    lower_headers,
    secret_keys,
)
from tidings.receiver.wire import DLT_ENVELOPE_FIELDS

DELIVERY_ID_HEADER = "X-Tidings-Delivery-Id"
ATTEMPT_HEADER = "X-Tidings-Attempt"
EVENT_ID_HEADER = "X-Tidings-Event-Id"
EVENT_TYPE_HEADER = "X-Tidings-Event-Type"
SCHEMA_VERSION_HEADER = "X-Tidings-Schema-Version"
CORRELATION_ID_HEADER = "X-Tidings-Correlation-Id"
SEQUENCE_HEADER = "X-Tidings-Sequence"
PREVIOUS_EVENT_ID_HEADER = "X-Tidings-Previous-Event-Id"


@dataclass(frozen=True)
class WebhookEvent:
    """One event as received.

    - `id`: the event id (stable across retries and replays: deduplicate on it).
    - `type`: the full catalog type (``compliance.status_changed``,
      ``derivatives.entitlementFailed``). For ``dlt`` bodies, which carry only the
      ``notification_type``, it comes from the ``X-Tidings-Event-Type`` header.
    - `schema_version`: the version of `data` (body ``schemaVersion`` for novatrade, else the
      ``X-Tidings-Schema-Version`` header; 1 when absent).
    - `created_at`: when the event happened (aware datetime, UTC), None if the body has none.
    - `data`: the event's data as a dict (``details`` for dlt); `raw`: the whole parsed body.
    - `delivery_id`, `attempt`: from the ``X-Tidings-*`` headers (None when absent).
    - `correlation_id`: the platform's id of the request that caused the event
      (``X-Tidings-Correlation-Id``; None when it gave none). Compare it with your own calls'
      ids to skip the echoes of your own changes. Like the other ``X-Tidings-*`` headers it is
      not covered by the signature.
    - `sequence`: the delivery's number in what the endpoint is owed (``X-Tidings-Sequence``:
      1, 2, 3 ... in the order the endpoint's deliveries were stored; None when absent). Store
      it with the event id: `tidings.receiver.reconcile` compares those pairs with tidings.
    - `previous_event_id`: the previous event of the same subject owed to this endpoint
      (``X-Tidings-Previous-Event-Id``; None for an event without a subject or the first of
      its subject). `OrderingGuard` checks it. Neither header is signed either.
    - `attributes`: envelope fields of the format (novatrade: source, organizationUuid,
      partnerUuid; dlt: owner_id, owner_type, external_id, entitlement_trigger_id,
      entitlement_id).
    """

    id: str
    type: str
    schema_version: int
    created_at: datetime | None
    data: Any
    raw: dict[str, Any]
    format: str
    delivery_id: str | None = None
    attempt: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    sequence: int | None = None
    previous_event_id: str | None = None

    @property
    def typed(self) -> EventData | None:
        """The data as its typed class (`tidings.receiver.models`), or None for a type or
        schema version without one. Raises `WebhookPayloadError` if a known type's data does
        not fit its class."""
        return parse_data(self.type, self.schema_version, self.data)


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError("the event time is not an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookPayloadError("the event time is not an RFC 3339 string") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _int_or_none(value: str | None, what: str) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise WebhookPayloadError(f"{what} is not an integer")
    return int(text)


def _require_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookPayloadError(f"the body has no string {key!r}")
    return value


def _load(body: bytes | str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise WebhookPayloadError("the body is not a JSON object")
    return parsed


def _dlt_type(notification_type: str, header_type: str | None) -> str:
    # The header carries the full <workflow>.<notification_type>; trust it only when it agrees
    # with the signed body (headers other than the signature are not signed).
    if header_type and (
        header_type == notification_type or header_type.endswith("." + notification_type)
    ):
        return header_type
    return notification_type


def parse(fmt: str, body: bytes | str, headers: HeadersLike) -> WebhookEvent:
    """Parse a delivery (already verified: see `verify_and_parse`) into a `WebhookEvent`."""
    if fmt not in FORMATS:
        raise WebhookVerificationError(UNKNOWN_FORMAT, f"unknown wire format {fmt!r}")
    raw = _load(body)
    h = lower_headers(headers)
    delivery_id = h.get(DELIVERY_ID_HEADER.lower()) or None
    correlation_id = h.get(CORRELATION_ID_HEADER.lower()) or None
    sequence = _int_or_none(h.get(SEQUENCE_HEADER.lower()), SEQUENCE_HEADER)
    previous_event_id = h.get(PREVIOUS_EVENT_ID_HEADER.lower()) or None
    attempt = _int_or_none(h.get(ATTEMPT_HEADER.lower()), ATTEMPT_HEADER)
    header_version = _int_or_none(h.get(SCHEMA_VERSION_HEADER.lower()), SCHEMA_VERSION_HEADER)
    if fmt == "novatrade":
        version = raw.get("schemaVersion", header_version or 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise WebhookPayloadError("schemaVersion is not an integer")
        return WebhookEvent(
            id=_require_str(raw, "id"),
            type=_require_str(raw, "type"),
            schema_version=version,
            created_at=_parse_time(raw.get("createdAt")),
            data=raw.get("data"),
            raw=raw,
            format=fmt,
            delivery_id=delivery_id,
            attempt=attempt,
            correlation_id=correlation_id,
            sequence=sequence,
            previous_event_id=previous_event_id,
            attributes={key: raw.get(key) for key in ("source", "organizationUuid", "partnerUuid")},
        )
    if fmt == "dlt":
        notification_type = _require_str(raw, "notification_type")
        return WebhookEvent(
            id=_require_str(raw, "notification_id"),
            type=_dlt_type(notification_type, h.get(EVENT_TYPE_HEADER.lower())),
            schema_version=header_version or 1,
            created_at=_parse_time(raw.get("created_at")),
            data=raw.get("details"),
            raw=raw,
            format=fmt,
            delivery_id=delivery_id,
            attempt=attempt,
            correlation_id=correlation_id,
            sequence=sequence,
            previous_event_id=previous_event_id,
            attributes={key: raw.get(key) for key in DLT_ENVELOPE_FIELDS},
        )
    msg_id = h.get(STANDARD_ID_HEADER, "").strip()
    if not msg_id:
        raise WebhookPayloadError("the webhook-id header is missing")
    return WebhookEvent(
        id=msg_id,
        type=_require_str(raw, "type"),
        schema_version=header_version or 1,
        created_at=_parse_time(raw.get("timestamp")),
        data=raw.get("data"),
        raw=raw,
        format=fmt,
        delivery_id=delivery_id,
        attempt=attempt,
        correlation_id=correlation_id,
        sequence=sequence,
        previous_event_id=previous_event_id,
    )


class Verifier:
    """A configured receiver: format, secrets and tolerance, checked once up front.

    ``Verifier("novatrade", [new_secret, old_secret]).verify_and_parse(body, headers)``.
    The constructor raises `WebhookVerificationError` (``unknown_format``/``bad_secret``) on a
    misconfiguration, so it fails at startup rather than on the first delivery.
    """

    def __init__(
        self,
        fmt: str,
        secrets: Secrets,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        if tolerance_seconds < 0:
            raise ValueError("tolerance_seconds must be >= 0")
        self.format = fmt
        self.tolerance_seconds = tolerance_seconds
        self._keys = secret_keys(fmt, secrets)

    def __repr__(self) -> str:  # never shows the secrets
        return (
            f"Verifier(format={self.format!r}, secrets=<{len(self._keys)}>, "
            f"tolerance_seconds={self.tolerance_seconds!r})"
        )

    def verify(self, body: bytes | str, headers: HeadersLike, *, now: float | None = None) -> None:
        _verify_keys(self.format, body, headers, self._keys, self.tolerance_seconds, now)

    def verify_and_parse(
        self, body: bytes | str, headers: HeadersLike, *, now: float | None = None
    ) -> WebhookEvent:
        self.verify(body, headers, now=now)
        return parse(self.format, body, headers)


def verify_and_parse(
    fmt: str,
    body: bytes | str,
    headers: HeadersLike,
    secrets: Secrets,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """`verify`, then `parse`: the event, or `WebhookVerificationError` (a body that verifies
    but is not an event of the format raises its subclass `WebhookPayloadError`)."""
    return Verifier(fmt, secrets, tolerance_seconds).verify_and_parse(body, headers, now=now)


__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_ID_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "PREVIOUS_EVENT_ID_HEADER",
    "SCHEMA_VERSION_HEADER",
    "SEQUENCE_HEADER",
    "Verifier",
    "WebhookEvent",
    "parse",
    "verify_and_parse",
]
