"""HMAC-SHA256 signers for the three wire formats, and secret generation (pure, stdlib).

Secrets (32 random bytes each)
    - ``standard``: ``whsec_<standard base64, padded>``; the HMAC key is the base64-decoded part
      after ``whsec_`` (Standard Webhooks specification).
    - ``novatrade``: ``ntsec_<64 lowercase hex>``; ``dlt``: ``dltsec_<64 lowercase hex>``. For
      these two the HMAC key is the whole secret string, UTF-8 encoded, exactly as shown to the
      integrator (the Stripe/GitHub convention: receivers pass the string as given).

Rotation: every signer takes the endpoint's valid secrets (current first, then those still in
their grace period) and produces one signature per secret, in the order given; a receiver that
knows any one of them verifies.

A ``standard`` endpoint must hold ``whsec_`` secrets: `sign_standard` raises ValueError on any
other secret rather than sign with a key no receiver can reproduce. Use `secret_fits_format`
when an endpoint's format changes (a new secret is needed then).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

SECRET_BYTES = 32
_PREFIX = {"standard": "whsec_", "novatrade": "ntsec_", "dlt": "dltsec_"}


def generate_secret(fmt: str) -> str:
    """A new secret for an endpoint of format `fmt` (32 random bytes)."""
    raw = _secrets.token_bytes(SECRET_BYTES)
    if fmt == "standard":
        return "whsec_" + base64.b64encode(raw).decode("ascii")
    if fmt in ("novatrade", "dlt"):
        return _PREFIX[fmt] + raw.hex()
    raise ValueError(f"unknown format {fmt!r}")


def secret_fits_format(secret: str, fmt: str) -> bool:
    """Whether `secret` has the form `generate_secret(fmt)` makes (prefix and payload)."""
    prefix = _PREFIX.get(fmt)
    if prefix is None or not secret.startswith(prefix):
        return False
    rest = secret[len(prefix) :]
    if fmt == "standard":
        try:
            return len(_standard_key(secret)) > 0
        except ValueError:
            return False
    return len(rest) == 2 * SECRET_BYTES and all(c in "0123456789abcdef" for c in rest)


def _standard_key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("a standard-format secret must start with whsec_")
    try:
        return base64.b64decode(secret[len("whsec_") :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a standard-format secret must be whsec_<standard base64>") from exc


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def sign_novatrade(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<ts>,v1=<hex>[,v1=<hex>...]`` over ``b"<ts>." + body``, one v1 per secret."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    ts = int(timestamp)
    message = f"{ts}.".encode() + body
    parts = [f"t={ts}"]
    parts.extend(f"v1={_hmac(s.encode('utf-8'), message).hex()}" for s in secrets)
    return ",".join(parts)


def sign_dlt(secrets: Sequence[str], body: bytes) -> str:
    """Standard base64 (padded) HMAC-SHA256 of the body; several secrets joined by ","."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(
        base64.b64encode(_hmac(s.encode("utf-8"), body)).decode("ascii") for s in secrets
    )


def sign_standard(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,<base64>`` per secret, space-separated, over
    ``b"<msg_id>.<timestamp>." + body``."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    message = f"{msg_id}.{int(timestamp)}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(_hmac(_standard_key(s), message)).decode("ascii") for s in secrets
    )


__all__ = [
    "SECRET_BYTES",
    "generate_secret",
    "secret_fits_format",
    "sign_dlt",
    "sign_novatrade",
    "sign_standard",
]
