"""Wire formats (contract §4), pure: the body bytes and headers of one delivery attempt.

The worker may call `render_body` once per delivery and `sign_headers` per attempt (the body
is identical across attempts; the timestamp and attempt number are not), or `render` for both.

Headers of every format: ``Content-Type: application/json``, ``User-Agent: tidings/<version>``,
``X-Tidings-Delivery-Id``, ``X-Tidings-Attempt`` (1-based), ``X-Tidings-Event-Id``,
``X-Tidings-Event-Type``, ``X-Tidings-Schema-Version``, ``X-Tidings-Correlation-Id`` when the
event has one (the platform's id of the request that caused it: receivers skip their own echoes),
``X-Tidings-Sequence`` (the endpoint's number for the delivery, issue 25) and
``X-Tidings-Previous-Event-Id`` when the event has a subject and an earlier event of that subject
was owed to the endpoint, plus the format's signature headers. Headers only: every format's body
stays as its specification says.
The endpoint's custom headers are added after them but never override any of them, nor any
other format's signature header, nor transport headers (compared case-insensitively); custom
headers that are not valid header names/values are dropped (the API refuses them up front with
`validate_custom_headers`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tidings
from tidings.formats import dlt, novatrade, standard
from tidings.models import Event
from tidings.receiver.wire import FORMATS

_BodyRenderer = Callable[[Event, Any, int], bytes]
_Signer = Callable[[Event, bytes, Sequence[str], float], dict[str, str]]
_RENDERERS: dict[str, tuple[_BodyRenderer, _Signer]] = {
    "novatrade": (novatrade.render_body, novatrade.signature_headers),
    "dlt": (dlt.render_body, dlt.signature_headers),
    "standard": (standard.render_body, standard.signature_headers),
}

# Names a custom header can never set (lower case); plus everything starting "x-tidings-".
RESERVED_HEADERS: frozenset[str] = frozenset(
    {
        "content-type",
        "user-agent",
        "x-novatrade-signature",
        "x-dlt-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "host",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-authorization",
        "proxy-connection",
    }
)
RESERVED_PREFIX = "x-tidings-"
# The envelope's correlationId, on every attempt of an event that has one (any format)
CORRELATION_ID_HEADER = "X-Tidings-Correlation-Id"
# The delivery's number in what its endpoint is owed, and the previous event of its subject
SEQUENCE_HEADER = "X-Tidings-Sequence"
PREVIOUS_EVENT_HEADER = "X-Tidings-Previous-Event-Id"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
MAX_CUSTOM_HEADERS = 20
MAX_HEADER_VALUE = 1024


@dataclass(frozen=True)
class RenderedRequest:
    body: bytes
    headers: dict[str, str]


def _check_format(fmt: str) -> tuple[_BodyRenderer, _Signer]:
    try:
        return _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown wire format {fmt!r}") from None


def is_reserved_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIX)


def _header_problem(name: str, value: str) -> str | None:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP token"
    if not isinstance(value, str):
        return f"header {name} must have a string value"
    if len(value) > MAX_HEADER_VALUE:
        return f"header {name} is longer than {MAX_HEADER_VALUE} characters"
    if any(c in value for c in "\r\n\0"):
        return f"header {name} must not contain line breaks or NUL"
    if is_reserved_header(name):
        return f"header {name} is set by tidings and cannot be overridden"
    return None


def validate_custom_headers(headers: Mapping[str, str]) -> str | None:
    """None when an endpoint's custom headers are acceptable, else the first reason."""
    if len(headers) > MAX_CUSTOM_HEADERS:
        return f"at most {MAX_CUSTOM_HEADERS} custom headers"
    for name, value in headers.items():
        problem = _header_problem(name, value)
        if problem is not None:
            return problem
    return None


def render_body(fmt: str, *, event: Event, data: Any, schema_version: int) -> bytes:
    """The body bytes (compact JSON, keys in contract order); identical for every attempt."""
    body_renderer, _ = _check_format(fmt)
    return body_renderer(event, data, schema_version)


def sign_headers(
    fmt: str,
    *,
    event: Event,
    body: bytes,
    delivery_id: str,
    attempt: int,
    secrets: Sequence[str],
    now: float,
    extra_headers: Mapping[str, str] | None = None,
    schema_version: int | None = None,
    sequence: int | None = None,
    previous_event_id: str | None = None,
) -> dict[str, str]:
    """Every header of one attempt. `schema_version` is the rendered version (the delivery's);
    it defaults to the event's own version when not given. `sequence` and `previous_event_id`
    are the delivery's (none when not given)."""
    _, signer = _check_format(fmt)
    if attempt < 1:
        raise ValueError("attempt numbers are 1-based")
    version = event.schema_version if schema_version is None else schema_version
    headers: dict[str, str] = {
        "Content-Type": "application/json",
        "User-Agent": f"tidings/{tidings.__version__}",
        "X-Tidings-Delivery-Id": delivery_id,
        "X-Tidings-Attempt": str(attempt),
        "X-Tidings-Event-Id": event.id,
        "X-Tidings-Event-Type": event.type,
        "X-Tidings-Schema-Version": str(version),
    }
    if event.correlation_id is not None:
        headers[CORRELATION_ID_HEADER] = event.correlation_id
    if sequence:
        headers[SEQUENCE_HEADER] = str(sequence)
    if previous_event_id is not None:
        headers[PREVIOUS_EVENT_HEADER] = previous_event_id
    headers.update(signer(event, body, secrets, now))
    taken = {name.lower() for name in headers}
    for name, value in (extra_headers or {}).items():
        if _header_problem(name, value) is not None or name.lower() in taken:
            continue
        headers[name] = value
        taken.add(name.lower())
    return headers


def render(
    fmt: str,
    *,
    event: Event,
    data: Any,
    schema_version: int,
    delivery_id: str,
    attempt: int,
    secrets: Sequence[str],
    now: float,
    extra_headers: Mapping[str, str] | None = None,
) -> RenderedRequest:
    """Body and headers of one attempt."""
    body = render_body(fmt, event=event, data=data, schema_version=schema_version)
    headers = sign_headers(
        fmt,
        event=event,
        body=body,
        delivery_id=delivery_id,
        attempt=attempt,
        secrets=secrets,
        now=now,
        extra_headers=extra_headers,
        schema_version=schema_version,
    )
    return RenderedRequest(body=body, headers=headers)


__all__ = [
    "FORMATS",
    "RESERVED_HEADERS",
    "RenderedRequest",
    "is_reserved_header",
    "render",
    "render_body",
    "sign_headers",
    "validate_custom_headers",
]
