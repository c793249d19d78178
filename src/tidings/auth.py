"""API keys and who acts: how keys look, how they are stored (SHA-256 hashed, never in clear),
the `Actor` a presented key (or, later, a console session) becomes, and the one place that says
which kind of key an operation needs. The store only ever sees hashes."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from tidings.errors import Forbidden
from tidings.ids import new_id
from tidings.models import ApiKey, KeyKind
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


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: its record and hash (what the store keeps) and the key in clear (shown
    once, never stored or logged)."""

    record: ApiKey
    key_hash: str
    api_key: str


def new_organization_key(organization_id: str, now: float) -> NewKey:
    api_key = new_key(KeyKind.ORGANIZATION)
    record = ApiKey(
        id=new_id("key", now),
        kind=KeyKind.ORGANIZATION,
        organization_id=organization_id,
        created_at=now,
    )
    return NewKey(record, hash_key(api_key), api_key)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the key (a platform key, organization_id None, or an organization key), and
    where from: the console session acting with that key and the client's address, when known
    (the audit log records them)."""

    key_id: str
    kind: KeyKind
    organization_id: str | None
    session_id: str | None = None
    client_address: str | None = None


def require_platform(actor: Actor) -> None:
    """403 unless `actor` holds a platform key."""
    if actor.kind is not KeyKind.PLATFORM:
        raise Forbidden("this call needs a platform key", code="platform_key_required")


def require_organization(actor: Actor) -> str:
    """The organization an organization key acts for (every query of the operation is scoped
    by it); 403 for any other key."""
    if actor.kind is not KeyKind.ORGANIZATION or actor.organization_id is None:
        raise Forbidden("this call needs an organization key", code="organization_key_required")
    return actor.organization_id


KEY_CACHE_SECONDS = 60.0
KEY_CACHE_ENTRIES = 10_000


class KeyCache:
    """Known keys (by hash) to the actor they make, for `ttl_seconds`: saves a database round
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
        self._cache: TtlCache[str, Actor] = TtlCache(ttl_seconds, max_entries, lru=True)

    def get(self, key_hash: str) -> Actor | None:
        return self._cache.get(key_hash, self._clock())

    def put(self, key_hash: str, actor: Actor) -> None:
        if self._enabled:
            self._cache.put(key_hash, actor, self._clock())
