"""One endpoint's journeys in Chromium, against a real `tidings serve` on SQLite and PostgreSQL
with real receivers: the integrator registers an endpoint through the form, opens it, sends a
test event and watches the attempt arrive and succeed; rotating the secret from the page makes
every delivery in the grace period verify with the old secret and with the new one (checked at
the receiver with the receiver SDK); another organization's endpoint and delivery are a 404
page when their URL is typed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from playwright.sync_api import expect

from tests.acceptance.test_serve import _Receiver as Receiver
from tidings.receiver.errors import WebhookVerificationError
from tidings.receiver.verify import verify

from .conftest import NARROW, Console
from .test_journeys import sign_in_with_keyboard


def wait_for_requests(receiver: Receiver, count: int, console: Console) -> None:
    deadline = time.monotonic() + 20
    while len(receiver.requests) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.requests) >= count, console.served.logs()


def test_integrator_sends_a_test_event_and_sees_the_attempt_succeed(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    receiver = Receiver()
    try:
        org = console.org()
        url = f"http://127.0.0.1:{receiver.port}/hooks"
        sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
        page.get_by_role("link", name="Register an endpoint").click()
        page.get_by_label("URL").fill(url)
        page.get_by_label("Event types").fill("compliance.*")
        page.get_by_role("button", name="Register the endpoint").click()
        secret = page.get_by_role("textbox", name="Secret").input_value()
        page.get_by_role("link", name="Back to the endpoints").click()
        page.get_by_role("link", name=url).click()
        expect(page.get_by_role("heading", name=f"Endpoint {url}")).to_be_visible()
        shot(page, "endpoint")
        page.get_by_role("link", name="Send a test event").click()
        page.get_by_label("Event type").select_option("compliance.decision_made")
        page.get_by_role("button", name="Start from this type's example").click()
        expect(page.get_by_label("Data (JSON)")).to_contain_text("VALID_EXPORT")
        page.get_by_role("button", name="Send the test event").click()
        expect(page.get_by_role("heading", name="Sent")).to_be_visible()
        live = page.locator("#live-delivery")
        expect(live).to_contain_text("succeeded")  # swapped in by htmx as it happens
        expect(live.get_by_role("cell", name="HTTP 200")).to_be_visible()
        shot(page, "test-event-succeeded")
        wait_for_requests(receiver, 1, console)
        headers, body = receiver.requests[0]
        verify("novatrade", body, headers, secret)
        assert len(receiver.requests) == 1
        # the test event is marked as one in the history
        [event] = console.api("GET", "/v1/events", key=org["apiKey"]).json()["items"]
        assert event["source"] == "SYSTEM" and event["attributes"] == {"test": True}
        assert orjson.loads(body)["data"]["orderId"] == event["data"]["orderId"]
    finally:
        receiver.close()


def test_rotating_the_secret_both_secrets_verify_during_the_grace_period(
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
            json={"url": url, "eventTypes": ["compliance.*"], "format": "standard"},
        )
        assert made.status_code == 201, made.text
        endpoint_id = made.json()["id"]
        sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
        page.goto(f"{console.url}/console/endpoints/{endpoint_id}")
        page.get_by_role("button", name="Reveal the secret").click()
        old = page.get_by_role("textbox", name="Current secret").input_value()
        page.get_by_label("Grace period (hours)").fill("1")
        page.get_by_role("button", name="Rotate the secret").click()
        page.get_by_role("dialog").get_by_role("button", name="Yes, go on").click()
        expect(page.get_by_role("status").first).to_contain_text("A new secret signs from now on")
        new = page.get_by_role("textbox", name="Current secret").input_value()
        previous = page.get_by_role("textbox", name="Previous secret", exact=False)
        expect(previous).to_have_value(old)
        assert new != old
        shot(page, "endpoint-secret-rotated")
        event = {
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org["organizationUuid"],
            "data": {"orderId": "ord_rot", "previousStatus": None, "status": "VALID"},
        }
        assert console.api("POST", "/v1/events", json=event).status_code == 201
        wait_for_requests(receiver, 1, console)
        headers, body = receiver.requests[0]
        verify("standard", body, headers, old)  # a receiver not yet switched
        verify("standard", body, headers, new)  # a receiver already switched
        try:
            verify("standard", body, headers, "whsec_" + "A" * 44)
        except WebhookVerificationError:
            pass
        else:
            raise AssertionError("a secret that is neither verified the delivery")
    finally:
        receiver.close()


def test_another_organizations_endpoint_and_delivery_are_not_found(
    page: Any, console: Console
) -> None:
    org, other = console.org("Acme Exports"), console.org("Other Ltd")
    made = console.api(
        "POST",
        "/v1/endpoints",
        key=other["apiKey"],
        json={"url": "http://127.0.0.1:9/other", "eventTypes": ["compliance.*"]},
    )
    assert made.status_code == 201, made.text
    event = {
        "type": "compliance.status_changed",
        "schemaVersion": 1,
        "source": "SYSTEM",
        "organizationUuid": other["organizationUuid"],
        "data": {"orderId": "ord_1", "previousStatus": None, "status": "VALID"},
    }
    published = console.api("POST", "/v1/events", json=event)
    assert published.status_code == 201, published.text
    deliveries = console.api("GET", "/v1/deliveries", key=other["apiKey"]).json()["items"]
    sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
    for path in (
        f"/console/endpoints/{made.json()['id']}",
        f"/console/endpoints/{made.json()['id']}/edit",
        f"/console/deliveries/{deliveries[0]['id']}",
        f"/console/events/{published.json()['id']}",
    ):
        response = page.goto(console.url + path)
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_contain_text("not found", ignore_case=True)
        expect(page.locator("body")).not_to_contain_text("http://127.0.0.1:9/other")


def test_an_integrators_pages_fit_a_400_px_screen(page: Any, console: Console) -> None:
    org = console.org()
    made = console.api(
        "POST",
        "/v1/endpoints",
        key=org["apiKey"],
        json={
            "url": "http://127.0.0.1:9/a/rather/long/path/that/an/integrator/might/register",
            "eventTypes": ["compliance.*", "kyc.*"],
        },
    )
    assert made.status_code == 201, made.text
    endpoint = f"/console/endpoints/{made.json()['id']}"
    page.set_viewport_size(NARROW)
    sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
    for path in (
        "/console/endpoints",
        endpoint,
        f"{endpoint}/edit",
        f"{endpoint}/test",
        f"{endpoint}/delete",
        "/console/endpoints/new",
        "/console/deliveries",
        "/console/events",
        "/console/state",
        "/console/audit",
    ):
        page.goto(console.url + path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the screen"
