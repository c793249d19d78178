"""Signature verification for the three wire formats tidings sends (stdlib only).

- ``novatrade``: ``X-Novatrade-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, the hex
  HMAC-SHA256 of ``b"<t>." + body`` keyed with the secret string's UTF-8 bytes (``ntsec_...``).
- ``dlt``: ``X-DLT-Signature: <base64>[,<base64>...]``, the HMAC-SHA256 of the body keyed with
  the secret string's UTF-8 bytes (``dltsec_...``). No timestamp, so no tolerance check.
- ``standard`` (Standard Webhooks): ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64>[ v1,<base64>...]`` over ``b"<id>.<timestamp>." + body``,
  keyed with the base64 decoding of the part after ``whsec_``.

Several signatures in a header (the sender rotating its secret) and several secrets on the
receiver side (the integrator rotating) are both accepted: any one pair matching verifies.
Every comparison uses `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from tidings.receiver.errors import (
    BAD_SECRET,
    MALFORMED_SIGNATURE,
    MISSING_SIGNATURE,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    UNKNOWN_FORMAT,
    WebhookVerificationError,
)
from tidings.receiver.wire import FORMATS

DEFAULT_TOLERANCE_SECONDS: Final = 300

NOVATRADE_SIGNATURE_HEADER: Final = "X-Novatrade-Signature"
DLT_SIGNATURE_HEADER: Final = "X-DLT-Signature"
STANDARD_ID_HEADER: Final = "webhook-id"
STANDARD_TIMESTAMP_HEADER: Final = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER: Final = "webhook-signature"

_SHA256_SIZE: Final = 32

Secrets = str | Sequence[str]


class HeadersLike(Protocol):
    """Anything with ``items()`` of (name, value): a dict, Starlette or Werkzeug headers."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def lower_headers(headers: HeadersLike) -> dict[str, str]:
    """A plain dict with lower-case names (works for dicts, Starlette and Werkzeug headers)."""
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _as_list(secrets: Secrets) -> list[str]:
    items = [secrets] if isinstance(secrets, str) else list(secrets)
    if not items:
        raise WebhookVerificationError(BAD_SECRET, "at least one secret is needed")
    for item in items:
        if not isinstance(item, str) or not item:
            raise WebhookVerificationError(BAD_SECRET, "secrets must be non-empty strings")
    return items


def _standard_key(secret: str) -> bytes:
    if secret.startswith(("ntsec_", "dltsec_")):
        raise WebhookVerificationError(
            BAD_SECRET, "a standard-format secret is whsec_<base64>, not a novatrade/dlt secret"
        )
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # validate=True also refuses url-safe base64, which would silently decode to
        # another key.
        raise WebhookVerificationError(
            BAD_SECRET, "a standard-format secret must be whsec_<standard base64 with padding>"
        ) from None
    if not key:
        raise WebhookVerificationError(BAD_SECRET, "a standard-format secret decodes to no key")
    return key


def _string_key(secret: str, fmt: str) -> bytes:
    if secret.startswith("whsec_"):
        raise WebhookVerificationError(
            BAD_SECRET, f"a whsec_ secret belongs to the standard format, not {fmt}"
        )
    return secret.encode("utf-8")


def secret_keys(fmt: str, secrets: Secrets) -> list[bytes]:
    """The HMAC keys for `secrets` in format `fmt`; raises unknown_format / bad_secret."""
    if fmt not in FORMATS:
        raise WebhookVerificationError(UNKNOWN_FORMAT, f"unknown wire format {fmt!r}")
    items = _as_list(secrets)
    if fmt == "standard":
        return [_standard_key(s) for s in items]
    return [_string_key(s, fmt) for s in items]


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _any_match(keys: Sequence[bytes], message: bytes, candidates: Sequence[bytes]) -> bool:
    matched = False
    for key in keys:
        expected = _mac(key, message)
        for candidate in candidates:
            # No early exit: the work done does not depend on which pair matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def _check_tolerance(timestamp: int, now: float, tolerance_seconds: float) -> None:
    if tolerance_seconds < 0:
        raise ValueError("tolerance_seconds must be >= 0")
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookVerificationError(TIMESTAMP_OUTSIDE_TOLERANCE)


def _parse_int(text: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise WebhookVerificationError(MALFORMED_SIGNATURE, "the timestamp is not unix seconds")
    return int(text)


def _verify_novatrade(
    body: bytes, headers: dict[str, str], keys: Sequence[bytes], tolerance: float, now: float
) -> None:
    value = headers.get(NOVATRADE_SIGNATURE_HEADER.lower(), "").strip()
    if not value:
        raise WebhookVerificationError(MISSING_SIGNATURE)
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(MALFORMED_SIGNATURE, "expected t=...,v1=...")
        if name == "t":
            timestamps.append(item)
        elif name == "v1":
            try:
                digest = bytes.fromhex(item)
            except ValueError:
                continue
            if len(digest) == _SHA256_SIZE:
                candidates.append(digest)
        # other schemes (v0, future versions) are ignored
    if len(timestamps) != 1:
        raise WebhookVerificationError(MALFORMED_SIGNATURE, "expected exactly one t=")
    if not candidates:
        raise WebhookVerificationError(MALFORMED_SIGNATURE, "no v1= signature")
    timestamp = _parse_int(timestamps[0])
    _check_tolerance(timestamp, now, tolerance)
    message = f"{timestamp}.".encode() + body
    if not _any_match(keys, message, candidates):
        raise WebhookVerificationError(SIGNATURE_MISMATCH)


def _b64_digest(text: str) -> bytes | None:
    try:
        digest = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == _SHA256_SIZE else None


def _verify_dlt(body: bytes, headers: dict[str, str], keys: Sequence[bytes]) -> None:
    value = headers.get(DLT_SIGNATURE_HEADER.lower(), "").strip()
    if not value:
        raise WebhookVerificationError(MISSING_SIGNATURE)
    candidates = [d for d in (_b64_digest(p) for p in value.split(",")) if d is not None]
    if not candidates:
        raise WebhookVerificationError(MALFORMED_SIGNATURE, "no base64 HMAC-SHA256 signature")
    if not _any_match(keys, body, candidates):
        raise WebhookVerificationError(SIGNATURE_MISMATCH)


def _verify_standard(
    body: bytes, headers: dict[str, str], keys: Sequence[bytes], tolerance: float, now: float
) -> None:
    msg_id = headers.get(STANDARD_ID_HEADER, "").strip()
    ts_text = headers.get(STANDARD_TIMESTAMP_HEADER, "").strip()
    value = headers.get(STANDARD_SIGNATURE_HEADER, "").strip()
    if not (msg_id and ts_text and value):
        raise WebhookVerificationError(MISSING_SIGNATURE)
    timestamp = _parse_int(ts_text)
    candidates: list[bytes] = []
    for part in value.split(" "):
        version, sep, signature = part.partition(",")
        if sep and version == "v1":
            digest = _b64_digest(signature)
            if digest is not None:
                candidates.append(digest)
        # other versions (v1a: asymmetric) are ignored
    if not candidates:
        raise WebhookVerificationError(MALFORMED_SIGNATURE, "no v1,<base64> signature")
    _check_tolerance(timestamp, now, tolerance)
    message = f"{msg_id}.{timestamp}.".encode() + body
    if not _any_match(keys, message, candidates):
        raise WebhookVerificationError(SIGNATURE_MISMATCH)


def _verify_keys(
    fmt: str,
    body: bytes | str,
    headers: HeadersLike,
    keys: Sequence[bytes],
    tolerance_seconds: float,
    now: float | None,
) -> None:
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    lowered = lower_headers(headers)
    current = time.time() if now is None else now
    if fmt == "novatrade":
        _verify_novatrade(raw, lowered, keys, tolerance_seconds, current)
    elif fmt == "dlt":
        _verify_dlt(raw, lowered, keys)
    elif fmt == "standard":
        _verify_standard(raw, lowered, keys, tolerance_seconds, current)
    else:
        raise WebhookVerificationError(UNKNOWN_FORMAT, f"unknown wire format {fmt!r}")


def verify(
    fmt: str,
    body: bytes | str,
    headers: HeadersLike,
    secrets: Secrets,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check that `body` (the raw bytes, exactly as received) was signed by tidings with one of
    `secrets`. Returns None, or raises `WebhookVerificationError` with a `.reason`.

    Header names are matched case-insensitively. For ``novatrade`` and ``standard`` the signed
    timestamp must be within `tolerance_seconds` of `now` (default: the current time).
    """
    keys = secret_keys(fmt, secrets)
    _verify_keys(fmt, body, headers, keys, tolerance_seconds, now)


__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "DLT_SIGNATURE_HEADER",
    "FORMATS",
    "NOVATRADE_SIGNATURE_HEADER",
    "STANDARD_ID_HEADER",
    "STANDARD_SIGNATURE_HEADER",
    "STANDARD_TIMESTAMP_HEADER",
    "HeadersLike",
    "Secrets",
    "lower_headers",
    "secret_keys",
    "verify",
]
