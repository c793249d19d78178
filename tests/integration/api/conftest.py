"""HTTP-level fixtures: the real FastAPI app over a real store of each backend (the `store`
fixture of tests/conftest.py: a fresh SQLite file or a fresh PostgreSQL database per test),
driven through httpx over ASGI.

- `make_api(clock=, resolver=, **settings)`: build an `Api` with Settings overrides (default:
  private URLs allowed, so receivers on 127.0.0.1 can be registered) and, when given, a DNS
  resolver for the endpoint URL rules. `api`: the default one.
- `Api.platform` / `Api.org(name)`: headers for a platform key / a new organization's key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tidings.api import create_app
from tidings.auth import hash_key
from tidings.catalog import Catalog
from tidings.clock import Clock, system_clock
from tidings.config import Settings
from tidings.ids import new_id
from tidings.models import ApiKey, KeyKind
from tidings.netguard import Resolver
from tidings.store.base import Store

PLATFORM_KEY = "tdk_platform_test_key_0123456789"


@dataclass
class Org:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Api:
    client: httpx.AsyncClient
    store: Store
    settings: Settings
    catalog: Catalog
    publisher: Any
    app: Any = None  # the FastAPI app the client talks to
    platform: dict[str, str] = field(
        default_factory=lambda: {"Authorization": f"Bearer {PLATFORM_KEY}"}
    )

    async def org(self, name: str = "acme") -> Org:
        r = await self.client.post("/v1/organizations", json={"name": name}, headers=self.platform)
        assert r.status_code == 201, r.text
        body = r.json()
        return Org(id=body["organizationUuid"], key=body["apiKey"])

    async def partner(self, org: Org, name: str = "dealer") -> str:
        r = await self.client.post(
            f"/v1/organizations/{org.id}/partners", json={"name": name}, headers=self.platform
        )
        assert r.status_code == 201, r.text
        return str(r.json()["partnerUuid"])


_CATALOG: Catalog | None = None


def catalog() -> Catalog:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = Catalog.load_default()
    return _CATALOG


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(store: Store) -> AsyncIterator[MakeApi]:
    clients: list[httpx.AsyncClient] = []

    async def make(
        clock: Clock = system_clock, resolver: Resolver | None = None, **overrides: Any
    ) -> Api:
        from tidings.publishing import Publisher

        settings = Settings(**{"allow_private_urls": True, **overrides})
        await store.ensure_platform_key(
            ApiKey(id=new_id("key"), kind=KeyKind.PLATFORM, organization_id=None, created_at=0.0),
            hash_key(PLATFORM_KEY),
        )
        cat = catalog()
        publisher = Publisher(store, cat, clock=clock)
        app = create_app(settings, store, cat, publisher, clock=clock, resolver=resolver)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tidings.test"
        )
        clients.append(client)
        return Api(
            client=client,
            store=store,
            settings=settings,
            catalog=cat,
            publisher=publisher,
            app=app,
        )

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()
