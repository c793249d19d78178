"""API keys: how they look, how they are stored (SHA-256 hashed, never in clear), and how a
presented key is turned into a principal. The store only ever sees hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from tidings.models import KeyKind
from tidings.ttlcache import TtlCache

ORG_KEY_PREFIX = "tdk_org_"
PLATFORM_KEY_PREFIX = "tdk_platform_"


def hash_key(key: str) -> str:
    """A key has 256 random bits, so a plain SHA-256 is enough (no salt or slow hash needed:
    nothing to brute-force), and it lets the store look a key up by its hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(kind: KeyKind) -> str:
    prefix = PLATFORM_KEY_PREFIX if kind is KeyKind.PLATFORM else ORG_KEY_PREFIX
    return prefix + secrets.token_urlsafe(32)


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a platform key (organization_id None) or an organization key."""

    key_id: str
    kind: KeyKind
    organization_id: str | None

    @property
    def is_platform(self) -> bool:
        return self.kind is KeyKind.PLATFORM


KEY_CACHE_SECONDS = 60.0
KEY_CACHE_ENTRIES = 10_000


class KeyCache:
    """Known keys (by hash) to their principal, for `ttl_seconds`: saves a database round
    trip on every authenticated request. Only keys that exist are kept (an unknown key is
    looked up every time, so a new key works at once and guessing fills nothing); keys are
    never deleted today, and when they can be, a revoked key stops working within the TTL.
    Least recently used entries go first beyond `max_entries`."""

    def __init__(
        self,
        ttl_seconds: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enabled = ttl_seconds > 0 and max_entries > 0
        self._clock = clock
        self._cache: TtlCache[str, Principal] = TtlCache(ttl_seconds, max_entries, lru=True)

    def get(self, key_hash: str) -> Principal | None:
        return self._cache.get(key_hash, self._clock())

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._enabled:
            self._cache.put(key_hash, principal, self._clock())
