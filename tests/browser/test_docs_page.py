"""`/docs` in Chromium against a real `tidings serve`, on SQLite and on PostgreSQL (issue 23):
Swagger UI starts under the page's own CSP from the files the package ships, with the network
cut off beyond the server (every other request is aborted and recorded), draws every operation
of the served description, and "Authorize" with an organization key then "Try it out" on
`GET /v1/endpoints` shows the organization's endpoint: the bearer scheme works from the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from .conftest import Console


def test_the_docs_work_offline_and_authorize_takes_a_key(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    org = console.org()
    r = console.api(
        "POST",
        "/v1/endpoints",
        key=org["apiKey"],
        json={"url": "http://127.0.0.1:9/docs-page-hooks", "eventTypes": ["compliance.*"]},
    )
    assert r.status_code == 201, r.text
    spec = console.api("GET", "/openapi.json").json()
    # Swagger UI draws an operation once under each of its tags
    drawn = sum(len(op["tags"]) for item in spec["paths"].values() for op in item.values())

    outside: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(console.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_server)
    refusals: list[str] = []
    page.on(
        "console",
        lambda message: (
            refusals.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))

    page.goto(console.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tidings")
    expect(page.locator(".opblock")).to_have_count(drawn)
    expect(page.locator("button.authorize")).to_be_visible()
    shot(page, "docs", full_page=False)

    page.locator("button.authorize").click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text("bearerAuth (http, Bearer)")
    dialog.get_by_role("textbox", name="auth-bearer-value").fill(org["apiKey"])
    dialog.get_by_role("button", name="Apply credentials").click()
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()

    listing = page.locator("#operations-endpoints-list_endpoints")
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    live = listing.locator(".live-responses-table")
    expect(live.locator("tbody .response-col_status").first).to_have_text("200")
    expect(live).to_contain_text("docs-page-hooks")
    shot(page, "docs-try-it-out", full_page=False)

    assert outside == [], outside
    assert failed == [], failed
    assert refusals == [], refusals
    assert org["apiKey"] not in console.served.logs()
