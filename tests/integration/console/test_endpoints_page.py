"""Pausing and resuming an endpoint from the console, on both backends: the service layer's
operations (so the API's scoping holds: a foreign id is a 404 page), the CSRF token and the
read-only rule of every changing form, and the held deliveries the resume sends."""

from __future__ import annotations

import re

from tests.integration.api.conftest import Org

from .conftest import Web, csrf_of
from .test_pages import endpoint


async def publish(web: Web, org: Org) -> None:
    async with web.client() as api:
        r = await api.post(
            "/v1/events",
            headers=web.platform_headers,
            json={
                "type": "compliance.status_changed",
                "schemaVersion": 1,
                "source": "SYSTEM",
                "organizationUuid": org.id,
                "data": {"orderId": "ord_1", "previousStatus": None, "status": "INCOMPLETE"},
            },
        )
    assert r.status_code == 201, r.text


async def endpoint_status(web: Web, org: Org, endpoint_id: str) -> str:
    async with web.client() as api:
        r = await api.get(f"/v1/endpoints/{endpoint_id}", headers=org.headers)
    return str(r.json()["status"])


async def test_pause_holds_and_resume_says_how_many_go_out(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    browser = await web.sign_in(org.key)
    page = await browser.get("/console/endpoints")
    assert f'action="/console/endpoints/{ep}/pause"' in page.text
    assert re.search(r"<form[^>]*/pause\"[^>]*data-confirm=", page.text)  # asks first
    r = await browser.post(
        f"/console/endpoints/{ep}/pause", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/endpoints"
    assert await endpoint_status(web, org, ep) == "paused"
    page = await browser.get("/console/endpoints")
    assert "The endpoint is paused" in page.text
    assert f'action="/console/endpoints/{ep}/resume"' in page.text
    await publish(web, org)
    await publish(web, org)
    r = await browser.post(
        f"/console/endpoints/{ep}/resume", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303
    page = await browser.get("/console/endpoints")
    assert "2 held deliveries will go out now" in page.text
    assert await endpoint_status(web, org, ep) == "active"


async def test_changing_an_endpoint_needs_the_csrf_token(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    browser = await web.sign_in(org.key)
    for data in ({}, {"csrf_token": "forged"}):
        r = await browser.post(f"/console/endpoints/{ep}/pause", data=data)
        assert r.status_code == 403 and "csrf_failed" in r.text
    assert await endpoint_status(web, org, ep) == "active"


async def test_another_organizations_endpoint_is_a_404_page(web: Web) -> None:
    org, other = await web.org("acme"), await web.org("other")
    foreign = await endpoint(web, other.key, "https://127.0.0.1:9/other")
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get("/console/endpoints")).text)
    r = await browser.post(f"/console/endpoints/{foreign}/pause", data={"csrf_token": csrf})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert await endpoint_status(web, other, foreign) == "active"
    # and the operator's session has no organization pages
    operator = await web.sign_in()
    assert (await operator.get("/console/endpoints")).status_code == 404


async def test_a_read_only_portal_session_cannot_change_anything(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    minted = await web.portal_link(org, readOnly=True)
    browser = web.client()
    await browser.get(minted["url"].removeprefix("http://tidings.test"))
    page = await browser.get("/console/endpoints")
    assert page.status_code == 200 and "read-only" in page.text
    assert "/pause" not in page.text  # no button it could not use
    csrf = csrf_of(page.text)  # the sign-out form's
    r = await browser.post(f"/console/endpoints/{ep}/pause", data={"csrf_token": csrf})
    assert r.status_code == 403 and "read_only" in r.text
    assert await endpoint_status(web, org, ep) == "active"
    # a writable link's session can
    writable = web.client()
    await writable.get((await web.portal_link(org))["url"].removeprefix("http://tidings.test"))
    csrf = csrf_of((await writable.get("/console/endpoints")).text)
    r = await writable.post(f"/console/endpoints/{ep}/pause", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert await endpoint_status(web, org, ep) == "paused"
    # a read-only session may always leave
    r = await browser.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
