"""The digest of a set of event ids (issue 25): order-independent, so a receiver and tidings
can compare a range of an endpoint's sequence numbers without listing it. tidings answers it
from `GET /v1/endpoints/{id}/digest`; `reconcile` computes it over the ids a receiver stored.

Each id counts as the first 16 bytes of its SHA-256 (big-endian); the digest is their sum
modulo 2**128, as 32 hex digits. A sum (not an XOR) counts an id given twice twice, and no
order changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_MODULUS = 1 << 128


def event_ids_digest(event_ids: Iterable[str]) -> str:
    """The digest of `event_ids` (32 hex digits; the empty set's is all zeros)."""
    total = 0
    for event_id in event_ids:
        total += int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:16], "big")
    return f"{total % _MODULUS:032x}"


__all__ = ["event_ids_digest"]
