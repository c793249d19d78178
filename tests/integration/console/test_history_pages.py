"""The console's deliveries, replay, events and state pages over HTTP on both backends: the
history newest first with its filters and keyset pages, one delivery with the request as sent
and every attempt, replay of one delivery and of a window after a preview, the organization's
events and one event's deliveries, state lookups; every change with its CSRF token, refused to
a read-only session, and a foreign id a 404 page, as in the API."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.integration.api.conftest import PLATFORM_KEY, Api, MakeApi, Org
from tests.integration.api.history_helpers import (
    T0,
    attempt_all,
    example,
    make_endpoint,
    publish,
)
from tidings import formats
from tidings.clock import FakeClock, to_rfc3339
from tidings.models import DeliveryStatus
from tidings.web import with_console

from .conftest import Web, csrf_of


@dataclass
class Both:
    api: Api
    web: Web
    clock: FakeClock


@pytest.fixture
async def both(make_api: MakeApi) -> AsyncIterator[Both]:
    clock = FakeClock(T0)
    api = await make_api(clock=clock)
    web = Web(app=with_console(api.app), store=api.store, clock=clock, clients=[])
    yield Both(api, web, clock)
    for client in web.clients:
        await client.aclose()


def ids_in(page: str, prefix: str = "/console/deliveries/") -> list[str]:
    return re.findall(re.escape(prefix) + r'([A-Za-z0-9_]+)"', page)


async def test_history_is_newest_first_filtered_and_paged(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    first = await make_endpoint(api, org, eventTypes=["compliance.*"])
    second = await make_endpoint(api, org, eventTypes=["kyc.*"])
    _, [a] = await publish(api, org, "compliance.status_changed", at=T0)
    _, [b] = await publish(api, org, "kyc.verification_completed", at=T0 + 60)
    _, [c] = await publish(api, org, "compliance.status_changed", at=T0 + 120)
    await attempt_all(api, now=T0 + 130, status_code=200)  # every one succeeds
    _, [d] = await publish(api, org, "compliance.status_changed", at=T0 + 180)
    browser = await web.sign_in(org.key)

    page = await browser.get("/console/deliveries")
    assert page.status_code == 200
    assert ids_in(page.text) == [d, c, b, a]
    assert "kyc.verification_completed" in page.text  # the event's type, read with the page
    only = await browser.get("/console/deliveries", params={"endpoint": second["id"]})
    assert ids_in(only.text) == [b]
    typed = await browser.get("/console/deliveries", params={"type": "compliance.*"})
    assert ids_in(typed.text) == [d, c, a]
    exact = await browser.get(
        "/console/deliveries",
        params={"type": "kyc.verification_completed", "endpoint": second["id"]},
    )
    assert ids_in(exact.text) == [b]
    pending = await browser.get("/console/deliveries", params={"status": "pending"})
    assert ids_in(pending.text) == [d]
    window = await browser.get(
        "/console/deliveries",
        params={"since": to_rfc3339(T0 + 60), "until": "2026-01-01 00:02:00"},
    )
    assert ids_in(window.text) == [b]
    assert first["id"] in page.text

    seen: list[str] = []
    url: str | None = "/console/deliveries?limit=1&type=compliance.*"
    while url is not None:
        r = await browser.get(url)
        seen += ids_in(r.text)
        found = re.search(r'<a rel="next" href="([^"]+)"', r.text)
        url = html.unescape(found.group(1)) if found else None
    assert seen == [d, c, a]


async def test_bad_filters_are_said_beside_their_field(both: Both) -> None:
    org = await both.api.org()
    browser = await both.web.sign_in(org.key)
    r = await browser.get(
        "/console/deliveries", params={"type": "*", "since": "yesterday-ish", "status": "lost"}
    )
    assert r.status_code == 422
    for name in ("type", "since", "status"):
        assert f'id="{name}-error"' in r.text, name
    assert "a bare" in r.text or "*" in r.text
    bad_cursor = await browser.get("/console/deliveries", params={"cursor": "nope"})
    assert bad_cursor.status_code == 400


async def test_a_delivery_shows_the_request_as_sent_and_every_attempt(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    ep = await make_endpoint(api, org, headers={"X-Team": "payments"})
    event, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 10, status_code=500, error="HTTP 500")
    await attempt_all(api, now=T0 + 70, status_code=200)
    browser = await web.sign_in(org.key)

    r = await browser.get(f"/console/deliveries/{dlv}")
    assert r.status_code == 200
    text = r.text
    assert "HTTP 500" in text and "try later" in text and "accepted" in text  # the excerpts
    assert "42 ms" in text or "43 ms" in text  # the duration
    assert to_rfc3339(T0 + 10).replace("T", " ").replace("Z", " UTC") in text
    # the body byte for byte as the worker renders it (formats, the same code)
    version, data = example(api, "compliance.status_changed")
    stored = await api.store.get_event(org.id, event.id)
    assert stored is not None
    body = formats.render_body(ep["format"], event=stored, data=stored.data, schema_version=version)
    assert body.decode() in html.unescape(text)
    # its headers, the endpoint's own among them, and no signature value
    unescaped = html.unescape(text)
    assert f"<code>X-Tidings-Event-Id</code></td><td><code>{event.id}</code>" in unescaped
    assert "<code>X-Tidings-Attempt</code></td><td><code>2</code>" in unescaped
    assert "<code>X-Team</code></td><td><code>payments</code>" in unescaped
    assert "not kept" in unescaped
    assert not re.search(r"v1=[0-9a-f]{16}|v1,[A-Za-z0-9+/]{16}", unescaped)
    assert data is not None


async def test_replay_one_delivery_from_its_page(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    await make_endpoint(api, org)
    _, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 10, status_code=500, final=True)
    browser = await web.sign_in(org.key)
    page = await browser.get(f"/console/deliveries/{dlv}")
    assert f'action="/console/deliveries/{dlv}/replay"' in page.text
    assert re.search(r'<form[^>]*/replay"[^>]*data-confirm=', page.text)  # asks first

    refused = await browser.post(f"/console/deliveries/{dlv}/replay", data={})
    assert refused.status_code == 403 and "csrf_failed" in refused.text
    r = await browser.post(
        f"/console/deliveries/{dlv}/replay", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/deliveries/{dlv}"
    replayed = await api.store.get_delivery(org.id, dlv)
    assert replayed is not None
    assert replayed.status == DeliveryStatus.PENDING and replayed.series == 2
    after = await browser.get(f"/console/deliveries/{dlv}")
    assert "Replay started" in after.text


async def test_replay_to_a_paused_endpoint_is_refused_on_the_page(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    ep = await make_endpoint(api, org)
    _, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 10, status_code=500, final=True)
    paused = await api.client.post(f"/v1/endpoints/{ep['id']}/pause", headers=org.headers)
    assert paused.status_code == 200, paused.text
    browser = await web.sign_in(org.key)
    page = await browser.get(f"/console/deliveries/{dlv}")
    r = await browser.post(
        f"/console/deliveries/{dlv}/replay", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 409 and "resume it" in r.text
    still = await api.store.get_delivery(org.id, dlv)
    assert still is not None and still.status == DeliveryStatus.FAILED


async def test_a_read_only_session_and_another_organization_cannot_replay(both: Both) -> None:
    api, web = both.api, both.web
    org, other = await api.org("acme"), await api.org("other")
    await make_endpoint(api, org)
    _, [dlv] = await publish(api, org, at=T0)
    await attempt_all(api, now=T0 + 10, status_code=500, final=True)

    stranger = await web.sign_in(other.key)
    assert (await stranger.get(f"/console/deliveries/{dlv}")).status_code == 404
    csrf = csrf_of((await stranger.get("/console/deliveries")).text)
    r = await stranger.post(f"/console/deliveries/{dlv}/replay", data={"csrf_token": csrf})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]

    link = await web.portal_link(Org(org.id, org.key), readOnly=True)
    reader = web.client()
    opened = await reader.get(link["url"].split("tidings.test", 1)[-1])
    assert opened.status_code == 303
    page = await reader.get(f"/console/deliveries/{dlv}")
    assert page.status_code == 200 and "/replay" not in page.text.split("<main", 1)[1]
    r = await reader.post(
        f"/console/deliveries/{dlv}/replay", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 403 and "read_only" in r.text
    unchanged = await api.store.get_delivery(org.id, dlv)
    assert unchanged is not None and unchanged.series == 1


async def test_replay_a_window_after_its_preview(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    ep = await make_endpoint(api, org)
    _, [a] = await publish(api, org, at=T0)
    _, [b] = await publish(api, org, at=T0 + 60)
    await attempt_all(api, now=T0 + 70, status_code=500, final=True)
    _, [c] = await publish(api, org, at=T0 + 120)
    await attempt_all(api, now=T0 + 130, status_code=200)
    browser = await web.sign_in(org.key)
    form = await browser.get("/console/replay", params={"endpoint": ep["id"]})
    assert form.status_code == 200 and f'value="{ep["id"]}" selected' in form.text

    query = {"endpoint": ep["id"], "since": to_rfc3339(T0 - 1), "status": "failed", "preview": "1"}
    preview = await browser.get("/console/replay", params=query)
    assert preview.status_code == 200
    assert re.search(r"<strong>\s*2\s+deliveries</strong> will be sent", preview.text)
    for dlv in (a, b):  # a preview changes nothing
        kept = await api.store.get_delivery(org.id, dlv)
        assert kept is not None and kept.status == DeliveryStatus.FAILED
    both_statuses = await browser.get(
        "/console/replay",
        params=[*query.items(), ("status", "succeeded")],
    )
    assert re.search(r"<strong>\s*3\s+deliveries</strong>", both_statuses.text)

    confirm = {
        "csrf_token": csrf_of(preview.text),
        "endpoint": ep["id"],
        "since": to_rfc3339(T0 - 1),
        "status": "failed",
    }
    assert (
        await browser.post("/console/replay", data={**confirm, "csrf_token": ""})
    ).status_code == 403
    r = await browser.post("/console/replay", data=confirm)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/deliveries?endpoint={ep['id']}"
    landed = await browser.get(r.headers["location"])
    assert "Replay started: 2 deliveries on their way again." in landed.text
    for dlv in (a, b):
        replayed = await api.store.get_delivery(org.id, dlv)
        assert replayed is not None and replayed.series == 2
    untouched = await api.store.get_delivery(org.id, c)
    assert untouched is not None and untouched.status == DeliveryStatus.SUCCEEDED

    bad = await browser.get(
        "/console/replay",
        params={
            "endpoint": ep["id"],
            "since": to_rfc3339(T0),
            "until": to_rfc3339(T0 - 60),
            "status": "skipped",
            "preview": "1",
        },
    )
    assert bad.status_code == 422 and 'id="until-error"' in bad.text
    skipped = await browser.get(
        "/console/replay",
        params={**query, "status": "skipped"},
    )
    assert skipped.status_code == 422 and 'id="status-error"' in skipped.text
    assert "skipped deliveries cannot be replayed" in skipped.text


async def test_events_feed_and_one_event_with_its_deliveries(both: Both) -> None:
    api, web = both.api, both.web
    org, other = await api.org("acme"), await api.org("other")
    ep = await make_endpoint(api, org, eventTypes=["compliance.*", "kyc.*"])
    first, [d1] = await publish(api, org, "compliance.status_changed", at=T0)
    second, _ = await publish(api, org, "kyc.verification_completed", at=T0 + 60)
    foreign, _ = await publish(api, other, "kyc.verification_completed", at=T0 + 90)
    browser = await web.sign_in(org.key)
    feed = await browser.get("/console/events")
    assert ids_in(feed.text, "/console/events/") == [first.id, second.id]  # oldest first
    typed = await browser.get("/console/events", params={"types": "kyc.*"})
    assert ids_in(typed.text, "/console/events/") == [second.id]
    bad = await browser.get("/console/events", params={"types": "*"})
    assert bad.status_code == 422 and 'id="types-error"' in bad.text
    one = await browser.get(f"/console/events/{first.id}")
    assert one.status_code == 200
    assert f"/console/deliveries/{d1}" in one.text and ep["id"] in one.text
    assert (await browser.get(f"/console/events/{foreign.id}")).status_code == 404


async def test_state_lookup(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org()
    r = await api.client.post(
        "/v1/events",
        headers={"Authorization": f"Bearer {PLATFORM_KEY}"},
        json={
            "type": "compliance.status_changed",
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org.id,
            "data": {"orderId": "ord_42", "previousStatus": None, "status": "INCOMPLETE"},
        },
    )
    assert r.status_code == 201, r.text
    browser = await web.sign_in(org.key)
    form = await browser.get("/console/state")
    assert form.status_code == 200 and 'name="kind"' in form.text
    found = await browser.get("/console/state", params={"kind": "compliance", "key": "ord_42"})
    assert found.status_code == 200 and "INCOMPLETE" in found.text
    api_says = await api.client.get("/v1/orders/ord_42/compliance", headers=org.headers)
    assert f'"status": "{api_says.json()["status"]}"' in html.unescape(found.text)
    missing = await browser.get("/console/state", params={"kind": "locks", "key": "own_1"})
    assert missing.status_code == 404 and "No state for this key yet" in missing.text


async def test_the_operator_has_no_history_pages(both: Both) -> None:
    browser = await both.web.sign_in(PLATFORM_KEY)
    for path in ("/console/deliveries", "/console/events", "/console/state", "/console/replay"):
        assert (await browser.get(path)).status_code == 404, path


async def test_an_event_with_an_unknown_error_code_is_flagged_on_its_page(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org("acme")
    attrs = {
        "owner_id": "own_1",
        "owner_type": "person",
        "external_id": "ext_1",
        "entitlement_trigger_id": "trg_1",
        "entitlement_id": "ent_1",
    }
    ids = []
    for code in ("FL0001", "FL9999"):
        r = await api.client.post(
            "/v1/events",
            json={
                "type": "onboarding.entitlementFailed",
                "schemaVersion": 1,
                "source": "SYSTEM",
                "organizationUuid": org.id,
                "data": {"code": code, "description": "x"},
                "attributes": attrs,
            },
            headers=api.platform,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    browser = await web.sign_in(org.key)
    known = await browser.get(f"/console/events/{ids[0]}")
    assert known.status_code == 200 and 'class="notice"' not in known.text
    unknown = await browser.get(f"/console/events/{ids[1]}")
    assert 'class="notice"' in unknown.text
    assert "Unknown error code" in unknown.text and "FL9999" in html.unescape(unknown.text)


async def test_an_erased_event_shows_as_erased_and_its_data_is_gone(both: Both) -> None:
    api, web = both.api, both.web
    org = await api.org("acme")
    await make_endpoint(api, org, eventTypes=["compliance.*"])
    event, _ = await publish(api, org, "compliance.status_changed", at=T0)
    browser = await web.sign_in(org.key)
    before = await browser.get(f"/console/events/{event.id}")
    assert "data erased" not in before.text and "orderId" in before.text
    r = await api.client.post(
        f"/v1/events/{event.id}/erase", json={"organizationUuid": org.id}, headers=api.platform
    )
    assert r.status_code == 200, r.text
    after = await browser.get(f"/console/events/{event.id}")
    assert after.status_code == 200
    assert "This event&#39;s data was erased" in after.text or "This event's data was erased" in (
        after.text
    )
    assert "orderId" not in after.text
    feed = await browser.get("/console/events")
    assert "(data erased)" in feed.text
