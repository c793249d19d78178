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
from tidings.models import ApiKey, KeyKind, KeyScope
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


VISIBLE_CHARS = 6  # of the random part: enough to tell a handful of keys apart, not to guess


def visible_prefix(api_key: str) -> str:
    """What a key's listing shows of it: its kind's prefix and the first few random
    characters (`tdk_org_Ab3dE9`); the rest is shown once, when the key is made."""
    for prefix in (PLATFORM_KEY_PREFIX, ORG_KEY_PREFIX):
        if api_key.startswith(prefix):
            return api_key[: len(prefix) + VISIBLE_CHARS]
    return api_key[:VISIBLE_CHARS]


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: its record and hash (what the store keeps) and the key in clear (shown
    once, never stored or logged)."""

    record: ApiKey
    key_hash: str
    api_key: str


def make_key(
    kind: KeyKind,
    organization_id: str | None,
    now: float,
    *,
    name: str | None = None,
    scope: KeyScope | None = None,
    expires_at: float | None = None,
) -> NewKey:
    api_key = new_key(kind)
    record = ApiKey(
        id=new_id("key", now),
        kind=kind,
        organization_id=organization_id,
        created_at=now,
        name=name,
        prefix=visible_prefix(api_key),
        scope=scope,
        expires_at=expires_at,
    )
    return NewKey(record, hash_key(api_key), api_key)


def new_organization_key(organization_id: str, now: float) -> NewKey:
    return make_key(KeyKind.ORGANIZATION, organization_id, now)


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
    scope: KeyScope | None = None  # None: the kind's full powers
    expires_at: float | None = None

    @property
    def effective_scope(self) -> KeyScope:
        if self.scope is not None:
            return self.scope
        return KeyScope.ADMIN if self.kind is KeyKind.PLATFORM else KeyScope.WRITE


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


def require_scope(actor: Actor, *allowed: KeyScope) -> None:
    """403 `insufficient_scope`, naming the scope needed, unless the actor's key has one of
    `allowed` (a `read` key that writes, a `publish` key that administers)."""
    if actor.effective_scope not in allowed:
        raise Forbidden(
            f"this call needs a key with scope {' or '.join(allowed)}; "
            f"this key's scope is {actor.effective_scope}",
            code="insufficient_scope",
            details={"required": [str(a) for a in allowed], "scope": str(actor.effective_scope)},
        )


def require_admin(actor: Actor) -> None:
    """A platform key with scope admin (everything but publishing needs it)."""
    require_platform(actor)
    require_scope(actor, KeyScope.ADMIN)


def require_publisher(actor: Actor) -> None:
    """A platform key that may publish: scope admin or publish."""
    require_platform(actor)
    require_scope(actor, KeyScope.ADMIN, KeyScope.PUBLISH)


def require_writer(actor: Actor) -> str:
    """An organization key that may change things (scope write); its organization."""
    organization_id = require_organization(actor)
    require_scope(actor, KeyScope.WRITE)
    return organization_id


# A revoked key must stop working in every process within 5 s (issue 22): the cache keeps a
# known key 4 s at most (1 s left for the request that asks).
KEY_CACHE_SECONDS = 4.0
TOUCH_SECONDS = 60.0  # last_used_at is written at most this often per key and process
KEY_CACHE_ENTRIES = 10_000


class KeyCache:
    """Known keys (by hash) to the actor they make, for `ttl_seconds`: saves a database round
    trip on every authenticated request. Only keys that exist are kept (an unknown key is
    looked up every time, so a new key works at once and guessing fills nothing); a revoked
    key stops working in every process within the TTL.
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
        self._touched: TtlCache[str, bool] = TtlCache(TOUCH_SECONDS, max_entries, lru=True)
        self._revoked: TtlCache[str, bool] = TtlCache(max(ttl_seconds, 1.0), max_entries)

    def revoke(self, key_id: str) -> None:
        """This process revoked the key: refuse it at once here (other processes within the
        TTL, when their entry goes)."""
        self._revoked.put(key_id, True, self._clock())

    def is_revoked(self, key_id: str) -> bool:
        return self._revoked.get(key_id, self._clock()) is not None

    def should_touch(self, key_id: str, now: float) -> bool:
        """True once a TOUCH_SECONDS per key (`now`: the service's clock): time to write its
        last_used_at again."""
        if self._touched.get(key_id, now) is not None:
            return False
        self._touched.put(key_id, True, now)
        return True

    def get(self, key_hash: str) -> Actor | None:
        return self._cache.get(key_hash, self._clock())

    def put(self, key_hash: str, actor: Actor) -> None:
        if self._enabled:
            self._cache.put(key_hash, actor, self._clock())
