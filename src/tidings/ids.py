"""Identifiers: `<prefix>_<26 chars>`, time-sortable (48-bit milliseconds + 80 random bits, in
Crockford base32, like ULID), so ids sort roughly by creation and leak nothing guessable."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str, now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode((millis << 80) | rand, 26)}"
