"""The console's journeys in Chromium, each against a real `tidings serve` on SQLite and on
PostgreSQL: the operator signs in with the keyboard and mints a portal link; the link opens
the integrator's console once; an expired link fails; a form posted without its CSRF token is
refused; the event catalog reads well; the pages fit 400 px; pausing an endpoint from its page
holds deliveries (real receiver) and resuming sends them, saying how many; the integrator
registers an endpoint through the form and first sees the error of a bare `*` beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.acceptance.test_serve import _Receiver as Receiver
from tidings.clock import parse_rfc3339

from .conftest import NARROW, Console


def sign_in_with_keyboard(
    page: Any, console: Console, key: str | None = None, lands_on: str = "Overview"
) -> None:
    page.goto(console.url + "/console/")
    expect(page).to_have_url(console.url + "/console/sign-in")
    page.keyboard.press("Tab")  # the skip link comes first
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(key or console.platform_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=lands_on, exact=True)).to_be_visible()


def test_operator_signs_in_and_mints_a_portal_link(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    org = console.org()
    sign_in_with_keyboard(page, console)
    expect(page.get_by_role("status").first).to_contain_text("You are signed in.")
    expect(page.get_by_role("img", name="Deliveries kept, by status")).to_be_visible()
    shot(page, "operator-overview")
    page.get_by_label("Organization uuid").fill(org["organizationUuid"])
    page.get_by_role("button", name="Mint a portal link").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Anyone who holds this link")
    dialog.get_by_role("button", name="Yes, go on").click()
    link = page.get_by_label("Portal link")
    expect(link).to_be_visible()
    value = link.input_value()
    assert value.startswith(console.url + "/console/portal/")
    expect(page.get_by_text("A portal link is ready.")).to_be_visible()
    shot(page, "operator-portal-link")
    assert console.platform_key not in page.content()
    assert console.platform_key not in console.served.logs()
    assert value.rsplit("/", 1)[1] not in console.served.logs()  # nor the link's token


def test_portal_link_opens_the_integrators_console_once(
    page: Any, chromium: Any, console: Console, shot: Callable[..., None]
) -> None:
    org = console.org()
    made = console.api(
        "POST",
        "/v1/endpoints",
        key=org["apiKey"],
        json={"url": "http://127.0.0.1:9/hooks/compliance", "eventTypes": ["compliance.*"]},
    )
    assert made.status_code == 201, made.text
    minted = console.portal_link(org["organizationUuid"], readOnly=True)
    page.goto(minted["url"])
    expect(page).to_have_url(console.url + "/console/endpoints")
    expect(page.get_by_role("cell", name="http://127.0.0.1:9/hooks/compliance")).to_be_visible()
    expect(page.get_by_text(org["organizationUuid"]).first).to_be_visible()
    expect(page.get_by_text("read-only").first).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("opened from a portal link")
    shot(page, "integrator-endpoints")
    other = chromium.new_context()
    try:
        second = other.new_page()
        answer = second.goto(minted["url"])
        assert answer is not None and answer.status == 410
        expect(second.get_by_role("heading", name="Link no longer valid")).to_be_visible()
        expect(second.get_by_text("was used already")).to_be_visible()
        shot(second, "portal-link-used")
    finally:
        other.close()


def test_an_expired_portal_link_fails(page: Any, console: Console) -> None:
    org = console.org()
    minted = console.portal_link(org["organizationUuid"], ttlSeconds=1)
    expires = parse_rfc3339(minted["expiresAt"])
    deadline = time.monotonic() + 10
    while time.time() <= expires + 0.2 and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for the link's own expiry, not timing anything
    answer = page.goto(minted["url"])
    assert answer is not None and answer.status == 410
    expect(page.get_by_text("This portal link has expired.")).to_be_visible()
    # and it opened nothing
    page.goto(console.url + "/console/endpoints")
    expect(page).to_have_url(console.url + "/console/sign-in")


def test_a_form_without_its_csrf_token_is_refused(page: Any, console: Console) -> None:
    org = console.org()
    sign_in_with_keyboard(page, console)
    page.get_by_label("Organization uuid").fill(org["organizationUuid"])
    form = page.locator("form[action='/console/portal-links']")
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.evaluate("form => form.removeAttribute('data-confirm')")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Mint a portal link").click()
    answer = navigation.value
    assert answer is not None and answer.status == 403
    expect(page.get_by_text("CSRF token is missing or wrong")).to_be_visible()
    page.goto(console.url + "/console/")
    expect(page.get_by_label("Portal link")).to_have_count(0)  # nothing was minted


def test_the_event_catalog_reads_well(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    sign_in_with_keyboard(page, console)
    page.get_by_role("link", name="Event catalog").click()
    expect(page.get_by_role("heading", name="Event catalog")).to_be_visible()
    page.get_by_label("Search").fill("entitlementFailed")
    page.get_by_role("button", name="Apply").click()
    shot(page, "catalog")
    page.get_by_role("link", name="derivatives.entitlementFailed").click()
    expect(page.get_by_role("heading", name="Schema version 1")).to_be_visible()
    expect(page.get_by_role("table", name="Shape 2: blacklist")).to_be_visible()
    expect(page.get_by_text("retailDerivatives30DaysBlacklist").first).to_be_visible()
    shot(page, "catalog-type")


def test_pages_fit_a_400_px_screen(page: Any, console: Console, shot: Callable[..., None]) -> None:
    page.set_viewport_size(NARROW)
    sign_in_with_keyboard(page, console)
    for path in ("/console/", "/console/catalog", "/console/catalog/compliance.status_changed"):
        page.goto(console.url + path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the screen"
    page.goto(console.url + "/console/")
    shot(page, "operator-overview-400px")


def test_pause_holds_deliveries_and_resume_sends_them(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    receiver = Receiver()
    try:
        org = console.org()
        url = f"http://127.0.0.1:{receiver.port}/hooks"
        made = console.api(
            "POST",
            "/v1/endpoints",
            key=org["apiKey"],
            json={"url": url, "eventTypes": ["compliance.*"]},
        )
        assert made.status_code == 201, made.text
        sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
        page.get_by_role("button", name=f"Pause {url}").click()
        page.get_by_role("dialog").get_by_role("button", name="Yes, go on").click()
        expect(page.get_by_role("status").first).to_contain_text("The endpoint is paused")
        expect(page.get_by_role("cell", name="paused", exact=False).first).to_be_visible()
        for n in range(2):
            event = {
                "type": "compliance.status_changed",
                "schemaVersion": 1,
                "source": "SYSTEM",
                "organizationUuid": org["organizationUuid"],
                "data": {"orderId": f"ord_{n}", "previousStatus": None, "status": "INCOMPLETE"},
            }
            assert console.api("POST", "/v1/events", json=event).status_code == 201
        held = console.api("GET", "/v1/deliveries?status=held", key=org["apiKey"]).json()
        assert len(held["items"]) == 2 and not receiver.requests
        page.get_by_role("button", name=f"Resume {url}").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "2 held deliveries will go out now"
        )
        deadline = time.monotonic() + 15
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.requests) == 2, console.served.logs()
        # the worker hands its counts over every few seconds: the table's health shows them
        deadline = time.monotonic() + 20
        while "100%" not in page.content() and time.monotonic() < deadline:
            time.sleep(1)
            page.reload()
        expect(page.get_by_role("cell", name="100% of 2")).to_be_visible()
        expect(page.get_by_role("cell", name="HTTP 200", exact=False)).to_be_visible()
        shot(page, "integrator-endpoints-resumed")
    finally:
        receiver.close()


def test_integrator_registers_an_endpoint_through_the_form(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    org = console.org()
    sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
    page.get_by_role("link", name="Register an endpoint").click()
    page.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    page.get_by_label("Event types").fill("compliance.*\n*")
    page.get_by_role("button", name="Register the endpoint").click()
    error = page.locator("#eventTypes-error")
    expect(error).to_contain_text("line 2:")
    expect(page.get_by_label("Event types")).to_have_attribute("aria-invalid", "true")
    shot(page, "endpoint-form-error")
    assert console.api("GET", "/v1/endpoints", key=org["apiKey"]).json()["items"] == []
    page.get_by_label("Event types").fill("compliance.*\nkyc.*")
    page.get_by_role("button", name="Register the endpoint").click()
    expect(page.get_by_role("heading", name="Endpoint registered")).to_be_visible()
    [stored] = console.api("GET", "/v1/endpoints", key=org["apiKey"]).json()["items"]
    secret = console.api("GET", f"/v1/endpoints/{stored['id']}/secret", key=org["apiKey"])
    expect(page.get_by_role("textbox", name="Secret")).to_have_value(secret.json()["secret"])
    page.get_by_role("link", name="Back to the endpoints").click()
    expect(page.get_by_role("cell", name="http://127.0.0.1:9/hooks", exact=True)).to_be_visible()
