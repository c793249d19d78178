"""The console's history and operator journeys in Chromium, each against a real `tidings serve`
on SQLite and on PostgreSQL with a real receiver: a receiver that answers 500 then 200 (the
failed attempt with its response excerpt, replay from the delivery's page delivers it; the
event and the state it made); a window of deliveries replayed after its preview count; the
operator creates an organization and a partner and mints a portal link from the pages.
(Pausing holds deliveries and resuming sends them, saying how many:
test_journeys.py::test_pause_holds_deliveries_and_resume_sends_them.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from playwright.sync_api import expect

from tests.acceptance.conftest import free_port

from .conftest import Console
from .test_journeys import sign_in_with_keyboard


class ScriptedReceiver:
    """A real HTTP receiver on 127.0.0.1 (a background thread) answering each request with the
    next of `answers` ((status, body)), then 200 "ok"."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.answers = list(answers)
        self.requests: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def handle(request: web.Request) -> web.Response:
                await request.read()
                self.requests.append(dict(request.headers))
                status, text = self.answers.pop(0) if self.answers else (200, "ok")
                return web.Response(status=status, text=text)

            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            runner = web.AppRunner(app)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def wait_for(self, count: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.requests) >= count, f"{len(self.requests)} of {count} requests arrived"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def reload_until(page: Any, text: str, seconds: float = 20) -> None:
    """Reload until `text` is on the page (the worker records an attempt a moment after the
    receiver answered it)."""
    deadline = time.monotonic() + seconds
    while text not in page.content() and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    expect(page.get_by_text(text).first).to_be_visible()


def integrator_with_endpoint(console: Console, receiver: ScriptedReceiver) -> dict[str, Any]:
    org = console.org()
    made = console.api(
        "POST",
        "/v1/endpoints",
        key=org["apiKey"],
        json={"url": receiver.url, "eventTypes": ["compliance.*"]},
    )
    assert made.status_code == 201, made.text
    return {**org, "endpoint": made.json()}


def publish(console: Console, org: dict[str, Any], order: str) -> str:
    r = console.api(
        "POST",
        "/v1/events",
        json={
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org["organizationUuid"],
            "data": {"orderId": order, "previousStatus": None, "status": "INCOMPLETE"},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_failed_attempt_is_visible_and_replay_from_the_page_delivers_it(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    receiver = ScriptedReceiver([(500, "upstream database unavailable")])
    try:
        org = integrator_with_endpoint(console, receiver)
        sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
        event_id = publish(console, org, "ord_500")
        receiver.wait_for(1)

        nav(page, "Deliveries")
        expect(page.get_by_role("heading", name="Deliveries", exact=True)).to_be_visible()
        reload_until(page, "HTTP 500")
        shot(page, "deliveries")
        page.locator("a[href^='/console/deliveries/dlv_']").first.click()
        expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
        excerpt = page.get_by_role("region", name="Every attempt, oldest first")
        expect(excerpt).to_contain_text("HTTP 500")
        expect(excerpt).to_contain_text("upstream database unavailable")
        expect(page.get_by_role("table", name="Headers")).to_contain_text(event_id)
        expect(page.get_by_label("Body, indented")).to_contain_text("ord_500")
        shot(page, "delivery-failed-attempt")

        page.get_by_role("button", name="Replay this delivery").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("same event id")
        dialog.get_by_role("button", name="Yes, go on").click()
        expect(page.get_by_role("status").first).to_contain_text("Replay started")
        receiver.wait_for(2)
        assert receiver.requests[1]["X-Tidings-Event-Id"] == event_id  # the same event, again
        assert receiver.requests[1]["X-Tidings-Attempt"] == "1"  # a new series
        reload_until(page, "HTTP 200")
        expect(page.get_by_text("succeeded").first).to_be_visible()
        shot(page, "delivery-replayed")

        # the event it came from, with its delivery; and the state it made
        page.get_by_role("link", name=event_id).click()
        expect(page.get_by_role("heading", name=f"Event {event_id}")).to_be_visible()
        per_endpoint = page.get_by_role("region", name="Deliveries of this event, one per endpoint")
        expect(per_endpoint).to_contain_text("succeeded")
        shot(page, "event")
        nav(page, "Events")
        expect(page.get_by_role("link", name=event_id)).to_be_visible()
        nav(page, "State")
        page.get_by_label("Key").fill("ord_500")
        page.get_by_role("button", name="Look up").click()
        expect(page.get_by_label("State", exact=True)).to_contain_text('"status": "INCOMPLETE"')
        shot(page, "state")
    finally:
        receiver.close()


def test_a_window_of_deliveries_is_replayed_after_its_preview(
    page: Any, console: Console, shot: Callable[..., None]
) -> None:
    receiver = ScriptedReceiver([(503, "busy"), (503, "busy")])
    try:
        org = integrator_with_endpoint(console, receiver)
        publish(console, org, "ord_a")
        publish(console, org, "ord_b")
        receiver.wait_for(2)
        sign_in_with_keyboard(page, console, org["apiKey"], "Endpoints")
        nav(page, "Deliveries")
        reload_until(page, "HTTP 503")
        page.get_by_role("link", name="Replay a window of deliveries").click()
        page.get_by_label("Endpoint", exact=True).select_option(org["endpoint"]["id"])
        page.get_by_label("Since").fill("1h")
        page.get_by_label("failed", exact=True).uncheck()
        page.get_by_label("pending", exact=True).check()  # retrying: the next try is 30 s away
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview-count")).to_contain_text("2 deliveries will be sent")
        assert len(receiver.requests) == 2  # the preview sent nothing
        shot(page, "replay-preview")
        page.get_by_role("button", name="Replay 2 deliveries").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "Replay started: 2 deliveries on their way again."
        )
        receiver.wait_for(4)
    finally:
        receiver.close()


def test_operator_creates_an_organization_and_a_partner_and_mints_a_portal_link(
    page: Any, chromium: Any, console: Console, shot: Callable[..., None]
) -> None:
    sign_in_with_keyboard(page, console)
    expect(page.get_by_role("img", name="Deliveries per minute, last hour (UTC)")).to_be_visible()
    # `tidings serve` runs a worker: the overview has seen it
    expect(page.get_by_role("table", name="Workers seen in the last minute")).to_be_visible()
    nav(page, "Organizations")
    page.get_by_label("Name").fill("Acme Exports")
    page.get_by_role("button", name="Create the organization").click()
    expect(page.get_by_role("heading", name="Organization created")).to_be_visible()
    key = page.get_by_role("textbox", name="API key").input_value()
    assert key.startswith("tdk_")
    page.get_by_role("link", name="Open Acme Exports").click()
    expect(page.get_by_role("heading", name="Acme Exports")).to_be_visible()
    page.get_by_label("Partner name").fill("Dealer One")
    page.get_by_role("button", name="Add the partner").click()
    expect(page.get_by_role("status").first).to_contain_text("added")
    expect(page.get_by_role("table", name="Partners")).to_contain_text("Dealer One")
    expect(page.get_by_role("table", name="API keys")).to_contain_text("organization")
    expect(page.get_by_label("Read-only (look, change nothing)")).to_be_checked()
    page.get_by_role("button", name="Mint a portal link").click()
    link = page.get_by_label("Portal link")
    expect(link).to_be_visible()
    portal_url = link.input_value()
    assert portal_url.startswith(console.url + "/console/portal/")
    shot(page, "operator-organization")
    nav(page, "Organizations")
    page.get_by_role("searchbox", name="Search").fill("acme")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("link", name="Acme Exports")).to_be_visible()
    shot(page, "operator-organizations")

    integrator = chromium.new_context()
    try:
        opened = integrator.new_page()
        opened.goto(portal_url)
        expect(opened.get_by_role("heading", name="Endpoints")).to_be_visible()
        expect(opened.get_by_text("read-only").first).to_be_visible()
        # the organization's own key works too: it is the one the page showed once
        r = console.api("GET", "/v1/endpoints", key=key)
        assert r.status_code == 200
    finally:
        integrator.close()
    assert key not in console.served.logs()
