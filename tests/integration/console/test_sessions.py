"""Console sessions over HTTP on both backends: sign in with either kind of key, the cookie's
attributes, sign-out ending the session for every process, CSRF refusals, read-only sessions,
and portal links (single use, expiry, scoping)."""

from __future__ import annotations

import httpx

from tests.integration.api.conftest import PLATFORM_KEY
from tidings.auth import hash_key
from tidings.clock import FakeClock
from tidings.services.console_sessions import PORTAL_LINK_SECONDS

from .conftest import MakeWeb, Web, csrf_of, session_cookie


async def test_a_platform_key_signs_in_and_the_key_stays_out_of_the_page(web: Web) -> None:
    browser = await web.sign_in()
    cookie = next(c for c in browser.cookies.jar if c.name == "tidings_session")
    assert cookie.path == "/console"
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "lax"
    assert not cookie.secure  # plain http here; https gets Secure
    assert PLATFORM_KEY not in session_cookie(browser)
    home = await browser.get("/console/")
    assert home.status_code == 200
    assert "Overview" in home.text and "You are signed in." in home.text
    assert PLATFORM_KEY not in home.text
    stored_as = session_cookie(browser)
    assert await web.store.find_console_session(stored_as, web.clock()) is None  # hashed


async def test_the_session_cookie_is_secure_over_https(web: Web) -> None:
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web.app), base_url="https://tidings.test"
    )
    web.clients.append(browser)
    form = await browser.get("/console/sign-in")
    r = await browser.post(
        "/console/sign-in", data={"api_key": PLATFORM_KEY, "csrf_token": csrf_of(form.text)}
    )
    assert r.status_code == 303
    assert "secure" in r.headers["set-cookie"].lower()


async def test_cookies_are_secure_when_the_public_url_is_https(make_web: MakeWeb) -> None:
    web = await make_web(public_url="https://webhooks.example.com")
    browser = web.client()  # plain http, as from a proxy that ended TLS
    form = await browser.get("/console/sign-in")
    assert "secure" in form.headers["set-cookie"].lower()
    r = await browser.post(
        "/console/sign-in", data={"api_key": PLATFORM_KEY, "csrf_token": csrf_of(form.text)}
    )
    assert all("secure" in c.lower() for c in r.headers.get_list("set-cookie"))


async def test_opening_a_portal_link_ends_the_session_it_replaces(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in()
    operator = session_cookie(browser)
    minted = await web.portal_link(org)
    r = await browser.get(minted["url"].removeprefix("http://tidings.test"))
    assert r.status_code == 303
    assert await web.store.find_console_session(hash_key(operator), web.clock()) is None
    assert (await browser.get("/console/endpoints")).status_code == 200  # now the org's


async def test_an_organization_key_signs_into_its_own_console(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in(org.key)
    home = await browser.get("/console/")
    assert home.status_code == 303 and home.headers["location"] == "/console/endpoints"
    page = await browser.get("/console/endpoints")
    assert page.status_code == 200 and org.id in page.text
    assert org.key not in page.text
    # the operator's pages are not there for an organization
    assert (await browser.get("/console/overview-panel")).status_code == 404


async def test_an_unknown_key_is_refused_on_the_page(web: Web) -> None:
    browser = web.client()
    form = await browser.get("/console/sign-in")
    r = await browser.post(
        "/console/sign-in", data={"api_key": "tdk_org_nope", "csrf_token": csrf_of(form.text)}
    )
    assert r.status_code == 401
    assert "not known" in r.text
    assert "tdk_org_nope" not in r.text
    assert "tidings_session" not in r.headers.get("set-cookie", "")


async def test_without_a_session_pages_send_the_browser_to_sign_in(web: Web) -> None:
    browser = web.client()
    for path in ("/console/", "/console/endpoints", "/console/catalog"):
        r = await browser.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/sign-in", path
    browser.cookies.set("tidings_session", "made-up", domain="tidings.test", path="/console")
    assert (await browser.get("/console/")).status_code == 303


async def test_sign_out_ends_the_session_everywhere(make_web: MakeWeb) -> None:
    first = await make_web()
    browser = await first.sign_in()
    token = session_cookie(browser)
    page = await browser.get("/console/")
    # another process over the same database serves the same session
    second = await make_web(clock=first.clock)
    other = second.client()
    other.cookies.set("tidings_session", token, domain="tidings.test", path="/console")
    assert (await other.get("/console/")).status_code == 200
    r = await browser.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    assert (await other.get("/console/")).status_code == 303


async def test_forms_without_their_csrf_token_are_refused(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in()
    page = await browser.get("/console/")
    for data in ({}, {"csrf_token": "wrong"}):
        r = await browser.post("/console/portal-links", data={"organizationUuid": org.id, **data})
        assert r.status_code == 403, data
        assert "csrf_failed" in r.text
        r = await browser.post("/console/sign-out", data=data)
        assert r.status_code == 403
    assert (await browser.get("/console/")).status_code == 200  # still signed in
    # the sign-in form has its own token (no session yet)
    fresh = web.client()
    await fresh.get("/console/sign-in")
    r = await fresh.post("/console/sign-in", data={"api_key": PLATFORM_KEY})
    assert r.status_code == 403
    r = await fresh.post("/console/sign-in", data={"api_key": PLATFORM_KEY, "csrf_token": "x"})
    assert r.status_code == 403
    ok = await browser.post(
        "/console/portal-links",
        data={"organizationUuid": org.id, "csrf_token": csrf_of(page.text)},
    )
    assert ok.status_code == 200


async def test_the_operator_mints_a_portal_link_on_the_page(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in()
    page = await browser.get("/console/")
    r = await browser.post(
        "/console/portal-links",
        data={"organizationUuid": org.id, "readOnly": "on", "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 200
    assert "http://tidings.test/console/portal/" in r.text and "read-only" in r.text


async def test_the_portal_form_shows_the_services_errors_beside_their_field(web: Web) -> None:
    org = await web.org()
    browser = await web.sign_in()
    csrf = csrf_of((await browser.get("/console/")).text)
    r = await browser.post(
        "/console/portal-links",
        data={"organizationUuid": org.id, "ttlSeconds": "999999", "csrf_token": csrf},
    )
    assert r.status_code == 422
    assert 'id="ttlSeconds-error"' in r.text and "must be between 1 and 86400" in r.text
    r = await browser.post(
        "/console/portal-links", data={"organizationUuid": "no-such-org", "csrf_token": csrf}
    )
    assert r.status_code == 422
    assert 'id="organizationUuid-error"' in r.text
    assert "/console/portal/" not in r.text


async def test_a_portal_link_opens_the_organizations_console_once(web: Web) -> None:
    org = await web.org()
    minted = await web.portal_link(org)
    path = minted["url"].removeprefix("http://tidings.test")
    assert path.startswith("/console/portal/")
    browser = web.client()
    r = await browser.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    page = await browser.get("/console/endpoints")
    assert page.status_code == 200 and org.id in page.text
    assert "opened from a portal link" in page.text
    again = await web.client().get(path)
    assert again.status_code == 410
    assert "used already" in again.text and "text/html" in again.headers["content-type"]
    assert path.rsplit("/", 1)[1] not in again.text  # the token is not echoed
    assert (await web.client().get("/console/portal/made-up")).status_code == 404


async def test_an_expired_portal_link_answers_410(make_web: MakeWeb) -> None:
    clock = FakeClock()
    web = await make_web(clock=clock)
    org = await web.org()
    minted = await web.portal_link(org, ttlSeconds=60)
    clock.advance(60)
    r = await web.client().get(minted["url"].removeprefix("http://tidings.test"))
    assert r.status_code == 410 and "expired" in r.text


async def test_portal_sessions_api(web: Web) -> None:
    org = await web.org()
    async with web.client() as api:
        url = f"/v1/organizations/{org.id}/portal-sessions"
        r = await api.post(url, headers=web.platform_headers)
        assert r.status_code == 201
        body = r.json()
        assert set(body) == {"url", "expiresAt"}
        from tidings.clock import parse_rfc3339

        assert parse_rfc3339(body["expiresAt"]) == web.clock() + PORTAL_LINK_SECONDS
        r = await api.post(url, json={"ttlSeconds": 0}, headers=web.platform_headers)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["path"] == "$.ttlSeconds"
        r = await api.post(url, json={"nope": 1}, headers=web.platform_headers)
        assert r.status_code == 422
        r = await api.post(url, headers={"Authorization": f"Bearer {org.key}"})
        assert r.status_code == 403
        r = await api.post(
            "/v1/organizations/no-such-org/portal-sessions", headers=web.platform_headers
        )
        assert r.status_code == 404


async def test_public_url_sets_the_links_origin(make_web: MakeWeb) -> None:
    web = await make_web(public_url="https://webhooks.example.com/")
    org = await web.org()
    minted = await web.portal_link(org)
    assert minted["url"].startswith("https://webhooks.example.com/console/portal/")
