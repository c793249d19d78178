"""The operator's organization pages over HTTP on both backends: the list with its search and
keyset pages, creating an organization (its key shown once, the API's rules beside the fields),
one organization with its partners (add one), its API keys and "open as this organization";
the overview's deliveries per minute and failing endpoints. An integrator's session sees none
of it (404 pages)."""

from __future__ import annotations

import html
import re

from tests.integration.api.conftest import PLATFORM_KEY
from tests.integration.api.history_helpers import T0, attempt_all, make_endpoint, publish
from tidings.clock import FakeClock

from .conftest import MakeWeb, Web, csrf_of
from .test_history_pages import Both, both

__all__ = ["both"]


def org_links(page: str) -> list[str]:
    return re.findall(r'href="/console/organizations/([^"/]+)"', page)


async def test_operator_creates_searches_and_opens_organizations(web: Web) -> None:
    existing = await web.org("Northwind Traders")
    browser = await web.sign_in(PLATFORM_KEY)
    listing = await browser.get("/console/organizations")
    assert listing.status_code == 200 and existing.id in org_links(listing.text)

    refused = await browser.post(
        "/console/organizations", data={"csrf_token": csrf_of(listing.text), "name": "  "}
    )
    assert refused.status_code == 422 and 'id="name-error"' in refused.text
    taken = await browser.post(
        "/console/organizations",
        data={
            "csrf_token": csrf_of(listing.text),
            "name": "Again",
            "organizationUuid": existing.id,
        },
    )
    assert taken.status_code == 409 and 'id="organizationUuid-error"' in taken.text
    assert (
        await browser.post("/console/organizations", data={"name": "No token"})
    ).status_code == 403

    made = await browser.post(
        "/console/organizations",
        data={"csrf_token": csrf_of(listing.text), "name": "Acme Exports"},
    )
    assert made.status_code == 201
    key = re.search(r'id="api-key" type="text" readonly value="([^"]+)"', made.text)
    assert key is not None and key.group(1).startswith("tdk_")
    new_id = re.search(r'href="/console/organizations/([^"]+)"', made.text)
    assert new_id is not None
    async with web.client() as api:  # the key works: the organization is real
        r = await api.get("/v1/endpoints", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert r.status_code == 200

    found = await browser.get("/console/organizations", params={"q": "acme"})
    assert org_links(found.text) == [new_id.group(1)]
    by_id = await browser.get("/console/organizations", params={"q": existing.id})
    assert org_links(by_id.text) == [existing.id]
    none = await browser.get("/console/organizations", params={"q": "zzz"})
    assert org_links(none.text) == [] and "No organization matches" in none.text
    walked: list[str] = []
    url: str | None = "/console/organizations?limit=1"
    while url is not None:  # oldest first, one a page (same clock: then by id)
        paged = await browser.get(url)
        links = org_links(paged.text)
        assert len(links) == 1
        walked += links
        more = re.search(r'<a rel="next" href="([^"]+)"', paged.text)
        url = html.unescape(more.group(1)) if more else None
    assert sorted(walked) == sorted([existing.id, new_id.group(1)])


async def test_an_organizations_partners_keys_and_portal_link(web: Web) -> None:
    org = await web.org("Acme Exports")
    browser = await web.sign_in(PLATFORM_KEY)
    page = await browser.get(f"/console/organizations/{org.id}")
    assert page.status_code == 200
    assert "No partner yet" in page.text
    assert re.search(r"<td><code>key_[A-Za-z0-9_]+</code></td><td>organization</td>", page.text)
    assert org.key not in page.text  # a key is never shown again

    csrf = csrf_of(page.text)
    bad = await browser.post(
        f"/console/organizations/{org.id}/partners", data={"csrf_token": csrf, "name": ""}
    )
    assert bad.status_code == 422 and 'id="name-error"' in bad.text
    added = await browser.post(
        f"/console/organizations/{org.id}/partners",
        data={"csrf_token": csrf, "name": "Dealer One", "partnerUuid": "ptn-1"},
    )
    assert added.status_code == 200 and "Partner <code>ptn-1</code> added." in added.text
    async with web.client() as api:
        listed = await api.get(f"/v1/organizations/{org.id}/partners", headers=web.platform_headers)
    assert [p["partnerUuid"] for p in listed.json()["items"]] == ["ptn-1"]
    again = await browser.post(
        f"/console/organizations/{org.id}/partners",
        data={"csrf_token": csrf, "name": "Dealer One", "partnerUuid": "ptn-1"},
    )
    assert again.status_code == 409 and 'id="partnerUuid-error"' in again.text

    # "open as this organization": read-only unless unticked
    assert re.search(r'id="readOnly" name="readOnly" type="checkbox" value="on" checked', page.text)
    minted = await browser.post(
        f"/console/organizations/{org.id}/portal-link",
        data={"csrf_token": csrf, "readOnly": "on"},
    )
    assert minted.status_code == 200 and "A portal link is ready." in minted.text
    url = re.search(r'id="minted-url" type="text" readonly value="([^"]+)"', minted.text)
    assert url is not None
    integrator = web.client()
    opened = await integrator.get(url.group(1).split("tidings.test", 1)[-1])
    assert opened.status_code == 303
    endpoints = await integrator.get("/console/endpoints")
    assert endpoints.status_code == 200 and "read-only" in endpoints.text
    for path in ("/console/organizations", f"/console/organizations/{org.id}"):
        assert (await integrator.get(path)).status_code == 404, path

    unknown = await browser.get("/console/organizations/org_nope")
    assert unknown.status_code == 404


async def test_the_overview_shows_deliveries_per_minute_and_failing_endpoints(
    both: Both,
) -> None:
    api, web = both.api, both.web
    org = await api.org()
    ep = await make_endpoint(api, org)
    for n in range(3):
        await publish(api, org, at=T0 - 120 + n)
    await attempt_all(api, now=T0, status_code=500, error="HTTP 500")
    both.clock.advance(30)
    browser = await web.sign_in(PLATFORM_KEY)
    page = await browser.get("/console/")
    assert page.status_code == 200
    chart = re.search(r"<svg class=\"chart chart-series\".*?</svg>", page.text, re.S)
    assert chart is not None
    assert "Deliveries per minute, last hour (UTC)" in chart.group(0)
    assert "23:58: 3" in html.unescape(chart.group(0))  # the three made two minutes before T0
    assert "Endpoints failing longest" in page.text and ep["id"] in page.text


async def test_a_fake_clock_is_what_the_overview_reads(make_web: MakeWeb) -> None:
    web = await make_web(clock=FakeClock(T0))
    browser = await web.sign_in(PLATFORM_KEY)
    page = await browser.get("/console/overview-panel")
    assert page.status_code == 200
    assert "23:59" in html.unescape(page.text) and "00:00" in html.unescape(page.text)


async def test_the_overview_shows_the_workers_seen_in_the_last_minute(both: Both) -> None:
    store, now = both.api.store, both.clock()
    await store.worker_seen("wrk_alive", now - 600, now - 10, forget_before=0.0)
    await store.worker_seen("wrk_quiet", now - 900, now - 120, forget_before=0.0)
    browser = await both.web.sign_in(PLATFORM_KEY)
    page = await browser.get("/console/overview-panel")
    assert page.status_code == 200
    assert "wrk_alive" in page.text and "wrk_quiet" not in page.text
    assert re.search(r'stat-value">1</span><span class="stat-label">workers seen', page.text)
