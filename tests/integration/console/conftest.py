"""The console over HTTP: the whole web app (API + console at /console) over a real store of
each backend, driven through httpx over ASGI with a cookie jar like a browser's.

- `make_web(clock=..., **settings)`: a `Web` with Settings overrides; `web`: the default one.
- `Web.sign_in(key)`: a signed-in client (its own cookie jar); `Web.org()`: a new organization
  and its key, made through the API.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import PLATFORM_KEY, MakeApi, Org, make_api

__all__ = ["make_api"]  # the API's fixture, which make_web builds on
from tidings.clock import Clock, FakeClock
from tidings.store.base import Store
from tidings.web import with_console

BASE_URL = "http://tidings.test"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def session_cookie(browser: httpx.AsyncClient) -> str:
    """The value of the browser's session cookie."""
    value = browser.cookies.get("tidings_session", path="/console")
    assert value is not None, "no session cookie"
    return value


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


@dataclass
class Web:
    app: Any
    store: Store
    clock: Clock
    clients: list[httpx.AsyncClient]
    platform_headers = {"Authorization": f"Bearer {PLATFORM_KEY}"}

    def client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL)
        self.clients.append(client)
        return client

    async def org(self, name: str = "acme") -> Org:
        async with self.client() as api:
            r = await api.post(
                "/v1/organizations", json={"name": name}, headers=self.platform_headers
            )
        assert r.status_code == 201, r.text
        return Org(id=r.json()["organizationUuid"], key=r.json()["apiKey"])

    async def sign_in(self, key: str = PLATFORM_KEY) -> httpx.AsyncClient:
        browser = self.client()
        form = await browser.get("/console/sign-in")
        assert form.status_code == 200
        r = await browser.post(
            "/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(form.text)}
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/console/"
        return browser

    async def portal_link(self, org: Org, **body: Any) -> dict[str, Any]:
        async with self.client() as api:
            r = await api.post(
                f"/v1/organizations/{org.id}/portal-sessions",
                json=body,
                headers=self.platform_headers,
            )
        assert r.status_code == 201, r.text
        return dict(r.json())


MakeWeb = Callable[..., Awaitable[Web]]


@pytest.fixture
async def make_web(make_api: MakeApi) -> AsyncIterator[MakeWeb]:
    """The API's test app (tests/integration/api's `make_api`) with the console mounted."""
    clients: list[httpx.AsyncClient] = []

    async def make(clock: Clock | None = None, **overrides: Any) -> Web:
        clock = clock or FakeClock()
        api = await make_api(clock=clock, **overrides)
        return Web(app=with_console(api.app), store=api.store, clock=clock, clients=clients)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def web(make_web: MakeWeb) -> Web:
    return await make_web()
