"""API keys: how they look, how they are stored (SHA-256 hashed, never in clear), and how a
presented key is turned into a principal. The store only ever sees hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tidings.models import KeyKind

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
