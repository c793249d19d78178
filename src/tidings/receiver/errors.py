"""The one exception type of the receiver SDK, with a machine-readable reason."""

from __future__ import annotations

from typing import Final

MISSING_SIGNATURE: Final = "missing_signature"
MALFORMED_SIGNATURE: Final = "malformed_signature"
TIMESTAMP_OUTSIDE_TOLERANCE: Final = "timestamp_outside_tolerance"
SIGNATURE_MISMATCH: Final = "signature_mismatch"
UNKNOWN_FORMAT: Final = "unknown_format"
BAD_SECRET: Final = "bad_secret"
MALFORMED_PAYLOAD: Final = "malformed_payload"

REASONS: Final = frozenset(
    {
        MISSING_SIGNATURE,
        MALFORMED_SIGNATURE,
        TIMESTAMP_OUTSIDE_TOLERANCE,
        SIGNATURE_MISMATCH,
        UNKNOWN_FORMAT,
        BAD_SECRET,
        MALFORMED_PAYLOAD,
    }
)

_MESSAGES: Final = {
    MISSING_SIGNATURE: "the signature header(s) are missing",
    MALFORMED_SIGNATURE: "the signature header cannot be parsed",
    TIMESTAMP_OUTSIDE_TOLERANCE: "the signed timestamp is outside the tolerance window",
    SIGNATURE_MISMATCH: "no signature matches any of the secrets",
    UNKNOWN_FORMAT: "unknown wire format",
    BAD_SECRET: "a configured secret is unusable for this format",
    MALFORMED_PAYLOAD: "the signed body is not a well-formed event of this format",
}


class WebhookVerificationError(Exception):
    """A delivery that must not be trusted (or a receiver misconfiguration).

    `reason` is one of: ``missing_signature``, ``malformed_signature``,
    ``timestamp_outside_tolerance``, ``signature_mismatch``, ``unknown_format``,
    ``bad_secret``, and, from parsing a verified body, ``malformed_payload``
    (raised as the subclass `WebhookPayloadError`). Messages never contain secrets.
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        self.message = message or _MESSAGES.get(reason, reason)
        super().__init__(f"{reason}: {self.message}")


class WebhookPayloadError(WebhookVerificationError):
    """The signature is valid but the body is not an event of the format (reason
    ``malformed_payload``), or a known type's data does not fit its typed class."""

    def __init__(self, message: str) -> None:
        super().__init__(MALFORMED_PAYLOAD, message)


__all__ = [
    "BAD_SECRET",
    "MALFORMED_PAYLOAD",
    "MALFORMED_SIGNATURE",
    "MISSING_SIGNATURE",
    "REASONS",
    "SIGNATURE_MISMATCH",
    "TIMESTAMP_OUTSIDE_TOLERANCE",
    "UNKNOWN_FORMAT",
    "WebhookPayloadError",
    "WebhookVerificationError",
]
