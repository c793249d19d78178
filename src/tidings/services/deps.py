"""What every service operation is handed: the store, the catalog, the publisher, the clock,
the URL rules of the settings, and the key cache. Built once per process by whoever assembles
it (`tidings.assembly`, a test); nothing below reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from tidings.auth import KeyCache
from tidings.catalog import Catalog
from tidings.clock import Clock, system_clock
from tidings.config import Settings
from tidings.netguard import Resolver
from tidings.publishing import EventPublisher
from tidings.store.base import Store


@dataclass(frozen=True, slots=True)
class UrlRules:
    """Where endpoint URLs may point (contract section 6): `http://` only when allowed,
    loopback/private/link-local/metadata addresses only when allowed. `resolver` answers the
    registration-time DNS question (None: the system resolver; tests pass their own)."""

    allow_http: bool = False
    allow_private: bool = False
    resolver: Resolver | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> UrlRules:
        return cls(
            allow_http=settings.http_allowed,
            allow_private=settings.allow_private_urls,
            resolver=resolver,
        )


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    catalog: Catalog
    publisher: EventPublisher
    clock: Clock = system_clock
    urls: UrlRules = field(default_factory=UrlRules)
    keys: KeyCache = field(default_factory=KeyCache)
