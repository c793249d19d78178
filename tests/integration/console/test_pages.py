"""The console's pages over HTTP on both backends: security headers, static files and their
cache headers, the event catalog, the endpoints table's keyset pagination and its scoping to
the session's organization, and HTML error pages."""

from __future__ import annotations

import re

from tidings.console.security import static_url

from .conftest import MakeWeb, Web


async def endpoint(web: Web, key: str, url: str) -> str:
    async with web.client() as api:
        r = await api.post(
            "/v1/endpoints",
            json={"url": url, "eventTypes": ["compliance.*"]},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_pages_carry_a_strict_csp_and_are_not_cached(web: Web) -> None:
    r = await web.client().get("/console/sign-in")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    # no inline script or style anywhere in the page
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert "style=" not in r.text and "<style" not in r.text


async def test_frame_ancestors_come_from_the_setting(make_web: MakeWeb) -> None:
    web = await make_web(console_frame_ancestors="'self' https://app.example.com")
    r = await web.client().get("/console/sign-in")
    assert r.headers["content-security-policy"].endswith(
        "frame-ancestors 'self' https://app.example.com"
    )
    assert "x-frame-options" not in r.headers


async def test_static_files_ship_in_the_package_with_cache_headers(web: Web) -> None:
    browser = web.client()
    for name in ("console.css", "console.js", "htmx.min.js"):
        r = await browser.get(static_url(name))
        assert r.status_code == 200, name
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "etag" in r.headers
    plain = await browser.get("/console/static/console.css")
    assert plain.headers["cache-control"] == "no-cache"
    assert (await browser.get("/console/static/nope.js")).status_code == 404
    page = await browser.get("/console/sign-in")
    assert static_url("htmx.min.js") in page.text


async def test_the_root_leads_to_the_console(web: Web) -> None:
    r = await web.client().get("/")
    assert r.status_code == 307 and r.headers["location"] == "/console/"


async def test_the_catalog_lists_and_filters_types(web: Web) -> None:
    browser = await web.sign_in()
    everything = await browser.get("/console/catalog")
    assert everything.status_code == 200
    assert "compliance.status_changed" in everything.text
    assert "onboarding.requirementsIDV" in everything.text
    kyc = await browser.get("/console/catalog", params={"q": "kyc.", "catalog": "novatrade"})
    assert "kyc.vies_check_failed" in kyc.text
    assert "onboarding.requirementsIDV" not in kyc.text
    one = await browser.get("/console/catalog/compliance.status_changed")
    assert one.status_code == 200
    assert "Schema version 2" in one.text and "Schema version 1" in one.text
    assert "<code>orderId</code>" in one.text and "ord_8HJ2K" in one.text
    missing = await browser.get("/console/catalog/nope.nothing")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


async def test_the_catalog_names_the_organizations_receiving_endpoints(web: Web) -> None:
    org, other = await web.org("acme"), await web.org("other")
    await endpoint(web, org.key, "https://127.0.0.1:9/acme-hooks")
    await endpoint(web, other.key, "https://127.0.0.1:9/other-hooks")
    browser = await web.sign_in(org.key)
    page = await browser.get("/console/catalog/compliance.status_changed")
    assert "acme-hooks" in page.text and "other-hooks" not in page.text
    page = await browser.get("/console/catalog/kyc.vies_check_failed")
    assert "None of your endpoints subscribes to it yet." in page.text


async def test_the_endpoints_table_pages_with_the_stores_cursor(web: Web) -> None:
    org, other = await web.org("acme"), await web.org("other")
    for n in range(3):
        await endpoint(web, org.key, f"https://127.0.0.1:9/hook-{n}")
    await endpoint(web, other.key, "https://127.0.0.1:9/foreign")
    browser = await web.sign_in(org.key)
    first = await browser.get("/console/endpoints", params={"limit": 2})
    assert "hook-0" in first.text and "hook-1" in first.text and "hook-2" not in first.text
    assert "First page" not in first.text
    match = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert match is not None
    second = await browser.get(match.group(1).replace("&amp;", "&"))
    assert "hook-2" in second.text and "hook-0" not in second.text
    assert "First page" in second.text and 'rel="next"' not in second.text
    assert "foreign" not in first.text + second.text
    bad = await browser.get("/console/endpoints", params={"cursor": "not-ours"})
    assert bad.status_code == 400 and "cursor" in bad.text


async def test_unknown_console_paths_answer_a_404_page(web: Web) -> None:
    browser = await web.sign_in()
    r = await browser.get("/console/no-such-page")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"] and "There is no such page." in r.text


async def test_the_overview_counts_what_the_store_holds(web: Web) -> None:
    org = await web.org()
    await endpoint(web, org.key, "https://127.0.0.1:9/a")
    await endpoint(web, org.key, "https://127.0.0.1:9/b")
    browser = await web.sign_in()
    panel = await browser.get("/console/overview-panel")
    assert panel.status_code == 200
    assert "<desc>active: 2, paused: 0, disabled: 0</desc>" in panel.text
    assert 'hx-get="/console/overview-panel"' in panel.text  # htmx keeps refreshing it
