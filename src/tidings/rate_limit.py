"""Inbound limits per API key (issue 22 section 5): a token bucket per key, refilled at
`rate` tokens a second up to `burst`; a request takes one token or is answered 429 with the
seconds until one is back (`Retry-After`). Pure: handed `now`. Each API process keeps its own
buckets (no shared state, no round trip), so N processes behind a balancer allow up to N times
the rate in total: say so where it is configured."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_KEYS = 100_000  # buckets kept; the least recently used go first (a full bucket again)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(self, rate: float, burst: float, max_keys: int = MAX_KEYS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> float | None:
        """None when `key` may go on (a token taken); else the seconds until it may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1 (Retry-After takes an integer)."""
    return str(max(1, math.ceil(seconds)))
