"""A service layer over the real store of each backend (the `store` fixture), a fake clock and
the real catalog and publisher: `world` (private URLs allowed, so tests choose their own
endpoint URLs) and `make_world(allow_private=, resolver=)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tidings.auth import Actor
from tidings.catalog import Catalog
from tidings.clock import FakeClock
from tidings.models import KeyKind
from tidings.netguard import Resolver
from tidings.publishing import Publisher
from tidings.services import keys, organizations
from tidings.services.deps import Deps, UrlRules
from tidings.services.endpoints import EndpointInput
from tidings.store.base import Store

_CATALOG: list[Catalog] = []


def catalog() -> Catalog:
    if not _CATALOG:
        _CATALOG.append(Catalog.load_default())
    return _CATALOG[0]


@dataclass
class World:
    deps: Deps
    clock: FakeClock
    platform: Actor

    async def org(self, name: str = "acme") -> Actor:
        """A new organization, and the actor its first key makes."""
        made = await organizations.create_organization(self.deps, self.platform, name)
        return await keys.authenticate(self.deps, made.api_key)

    def endpoint_input(self, **fields: Any) -> EndpointInput:
        given = {"url": "https://hooks.example.com/in", "event_types": ["compliance.*"], **fields}
        return EndpointInput(**given)

    async def publish(self, org: Actor, data: dict[str, Any] | None = None) -> str:
        """A compliance.status_changed from the web app, through the real publisher."""
        envelope = {
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "WEB_APP",
            "organizationUuid": org.organization_id,
            "data": data or {"orderId": "ord_1", "previousStatus": "INCOMPLETE", "status": "VALID"},
        }
        result = await self.deps.publisher.publish(envelope)
        return result.event.id


@pytest.fixture
def make_world(store: Store) -> Callable[..., World]:
    def make(allow_private: bool = True, resolver: Resolver | None = None) -> World:
        clock = FakeClock()
        deps = Deps(
            store=store,
            catalog=catalog(),
            publisher=Publisher(store, catalog(), clock=clock),
            clock=clock,
            urls=UrlRules(allow_http=allow_private, allow_private=allow_private, resolver=resolver),
        )
        platform = Actor(key_id="key_platform", kind=KeyKind.PLATFORM, organization_id=None)
        return World(deps=deps, clock=clock, platform=platform)

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
