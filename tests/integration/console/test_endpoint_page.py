"""One endpoint's page and its test event, over HTTP on both backends (issue 21): health at a
glance from the workers' recorded hours, the edit form prefilled and refusing bad input beside
its field with nothing stored, reveal and rotate the secret (both secrets signing during the
grace period), delete after a confirmation, send a test event (this endpoint only, marked as a
test, no state changed) and watch its delivery; every change with its CSRF token, refused to a
read-only session, and a foreign id a 404 page."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.integration.api.conftest import Org
from tidings.endpoint_health import Recorder

from .conftest import Web, csrf_of
from .test_pages import endpoint


async def api_get(web: Web, org: Org, path: str) -> Any:
    async with web.client() as api:
        r = await api.get(path, headers=org.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_table_and_the_page_show_health_at_a_glance(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    recorder = Recorder()
    now = web.clock()
    for duration, status in [(4.0, 200), (30.0, 200), (40.0, 200), (700.0, 500)]:
        recorder.record(ep, org.id, now - 60, duration, status, None)
    recorder.record(ep, org.id, now - 30, 5000.5, None, "timeout after 5 s")
    recorder.record(ep, org.id, now - 3 * 86_400, 1.0, 200, None)  # outside the 24 hours
    await web.store.add_endpoint_stats(recorder.take(), forget_before=0.0)
    browser = await web.sign_in(org.key)
    table = (await browser.get("/console/endpoints")).text
    assert f'href="/console/endpoints/{ep}"' in table
    assert '60% <span class="muted">of 5</span>' in table  # 3 of 5 succeeded
    assert "≤ 50 ms / &gt; 5 s" in table  # p50 / p95 to their bucket's bound
    assert "timeout after 5 s" in table  # the last attempt's result
    page = await browser.get(f"/console/endpoints/{ep}")
    assert page.status_code == 200
    assert '60% <span class="muted">of 5</span>' in page.text
    assert "Held deliveries</dt><dd>0" in page.text
    # a new endpoint has nothing yet
    fresh = await endpoint(web, org.key, "https://127.0.0.1:9/fresh")
    assert "no attempt" in (await browser.get(f"/console/endpoints/{fresh}")).text


async def test_the_edit_form_is_prefilled_and_changes_the_endpoint(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    browser = await web.sign_in(org.key)
    form = await browser.get(f"/console/endpoints/{ep}/edit")
    assert form.status_code == 200
    assert 'value="https://127.0.0.1:9/hooks"' in form.text
    assert ">compliance.*</textarea>" in form.text
    csrf = csrf_of(form.text)
    base = {
        "csrf_token": csrf,
        "url": "https://127.0.0.1:9/changed",
        "eventTypes": "compliance.*\nkyc.*",
        "format": "novatrade",
        "sources": ["SYSTEM", "WEB_APP"],
        "description": "changed from the console",
        "rateLimitPerSecond": "5",
    }
    # bad input: the API's message beside its field, nothing stored
    bad = await browser.post(f"/console/endpoints/{ep}/edit", data={**base, "eventTypes": "*"})
    assert bad.status_code == 422
    assert 'id="eventTypes-error"' in bad.text and "line 1" in bad.text
    assert (await api_get(web, org, f"/v1/endpoints/{ep}"))["url"] == "https://127.0.0.1:9/hooks"
    bad = await browser.post(
        f"/console/endpoints/{ep}/edit", data={**base, "rateLimitPerSecond": "fast"}
    )
    assert bad.status_code == 422 and 'id="rateLimitPerSecond-error"' in bad.text
    ok = await browser.post(f"/console/endpoints/{ep}/edit", data=base)
    assert ok.status_code == 303 and ok.headers["location"] == f"/console/endpoints/{ep}"
    stored = await api_get(web, org, f"/v1/endpoints/{ep}")
    assert stored["url"] == "https://127.0.0.1:9/changed"
    assert stored["eventTypes"] == ["compliance.*", "kyc.*"]
    assert stored["description"] == "changed from the console"
    assert stored["rateLimitPerSecond"] == 5
    assert "The endpoint is changed" in (await browser.get(f"/console/endpoints/{ep}")).text


async def test_reveal_and_rotate_the_secret(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    secret = (await api_get(web, org, f"/v1/endpoints/{ep}/secret"))["secret"]
    browser = await web.sign_in(org.key)
    page = await browser.get(f"/console/endpoints/{ep}")
    assert secret not in page.text  # not shown until asked, and never by a GET
    csrf = csrf_of(page.text)
    shown = await browser.post(f"/console/endpoints/{ep}/secret", data={"csrf_token": csrf})
    assert shown.status_code == 200 and secret in shown.text
    bad = await browser.post(
        f"/console/endpoints/{ep}/secret/rotate", data={"csrf_token": csrf, "graceHours": "-1"}
    )
    assert bad.status_code == 422 and 'id="graceHours-error"' in bad.text
    assert (await api_get(web, org, f"/v1/endpoints/{ep}/secret"))["secret"] == secret
    rotated = await browser.post(
        f"/console/endpoints/{ep}/secret/rotate", data={"csrf_token": csrf, "graceHours": "2"}
    )
    assert rotated.status_code == 200 and "A new secret signs from now on" in rotated.text
    now_signing = await api_get(web, org, f"/v1/endpoints/{ep}/secret")
    assert now_signing["secret"] != secret
    assert now_signing["secret"] in rotated.text and secret in rotated.text  # both sign


async def test_delete_asks_first(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    browser = await web.sign_in(org.key)
    confirm = await browser.get(f"/console/endpoints/{ep}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert (await api_get(web, org, f"/v1/endpoints/{ep}"))["id"] == ep  # asking deletes nothing
    r = await browser.post(
        f"/console/endpoints/{ep}/delete", data={"csrf_token": csrf_of(confirm.text)}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/endpoints"
    async with web.client() as api:
        gone = await api.get(f"/v1/endpoints/{ep}", headers=org.headers)
    assert gone.status_code == 404
    assert "The endpoint is deleted" in (await browser.get("/console/endpoints")).text


async def test_a_test_event_goes_to_this_endpoint_only_and_changes_no_state(web: Web) -> None:
    org = await web.org()
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    other = await endpoint(web, org.key, "https://127.0.0.1:9/other")
    browser = await web.sign_in(org.key)
    form = await browser.get(f"/console/endpoints/{ep}/test?type=compliance.status_changed")
    assert form.status_code == 200
    assert "orderId" in html.unescape(form.text)  # the catalog's example, prefilled
    csrf = csrf_of(form.text)
    bad = await browser.post(
        f"/console/endpoints/{ep}/test",
        data={"csrf_token": csrf, "type": "compliance.status_changed", "data": "{not json"},
    )
    assert bad.status_code == 422 and 'id="data-error"' in bad.text
    invalid = await browser.post(
        f"/console/endpoints/{ep}/test",
        data={"csrf_token": csrf, "type": "compliance.status_changed", "data": '{"orderId": 1}'},
    )
    assert invalid.status_code == 422 and 'id="data-error"' in invalid.text
    unsubscribed = await browser.post(
        f"/console/endpoints/{ep}/test",
        data={"csrf_token": csrf, "type": "kyc.verification_completed", "data": "{}"},
    )
    assert unsubscribed.status_code == 422
    example = re.search(r"<textarea[^>]*>(.*?)</textarea>", form.text, re.S)
    assert example is not None
    data = json.dumps({**json.loads(html.unescape(example.group(1))), "orderId": "ord_test"})
    sent = await browser.post(
        f"/console/endpoints/{ep}/test",
        data={"csrf_token": csrf, "type": "compliance.status_changed", "data": data},
    )
    assert sent.status_code == 201, sent.text
    delivery_id = re.search(r'/console/deliveries/([A-Za-z0-9_]+)/live"', sent.text)
    assert delivery_id is not None
    event = (await api_get(web, org, "/v1/events"))["items"][-1]
    assert event["source"] == "SYSTEM" and event["attributes"] == {"test": True}
    one = await api_get(web, org, f"/v1/events/{event['id']}")
    assert [d["endpointId"] for d in one["deliveries"]] == [ep]  # not `other`
    assert other not in {d["endpointId"] for d in one["deliveries"]}
    async with web.client() as api:
        state = await api.get("/v1/orders/ord_test/compliance", headers=org.headers)
    assert state.status_code == 404  # no state changed
    live = await browser.get(f"/console/deliveries/{delivery_id.group(1)}/live")
    assert live.status_code == 200 and 'hx-trigger="every 1s"' in live.text  # not settled yet
    assert "No attempt yet" in live.text


async def test_a_dlt_test_event_carries_stand_in_attributes(web: Web) -> None:
    org = await web.org()
    async with web.client() as api:
        r = await api.post(
            "/v1/endpoints",
            json={"url": "https://127.0.0.1:9/dlt", "eventTypes": ["rfi.*"]},
            headers=org.headers,
        )
    ep = r.json()["id"]
    browser = await web.sign_in(org.key)
    form = await browser.get(f"/console/endpoints/{ep}/test?type=rfi.reminder")
    data = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", form.text, re.S).group(1))  # type: ignore[union-attr]
    sent = await browser.post(
        f"/console/endpoints/{ep}/test",
        data={"csrf_token": csrf_of(form.text), "type": "rfi.reminder", "data": data},
    )
    assert sent.status_code == 201, sent.text
    event = (await api_get(web, org, "/v1/events"))["items"][-1]
    assert event["attributes"]["test"] is True
    assert event["attributes"]["owner_id"] == "test_owner_id"
    assert event["attributes"]["owner_type"] == "person"


async def test_every_change_needs_its_token_a_writable_session_and_its_own_endpoint(
    web: Web,
) -> None:
    org, other = await web.org("acme"), await web.org("other")
    ep = await endpoint(web, org.key, "https://127.0.0.1:9/hooks")
    foreign = await endpoint(web, other.key, "https://127.0.0.1:9/other")
    browser = await web.sign_in(org.key)
    csrf = csrf_of((await browser.get(f"/console/endpoints/{ep}")).text)
    changes = ["edit", "secret", "secret/rotate", "delete", "test"]
    for change in changes:
        for data in ({}, {"csrf_token": "forged"}):
            r = await browser.post(f"/console/endpoints/{ep}/{change}", data=data)
            assert r.status_code == 403 and "csrf_failed" in r.text, change
    # another organization's endpoint: a 404 page for every page and every change
    for page in ("", "/edit", "/delete", "/test"):
        r = await browser.get(f"/console/endpoints/{foreign}{page}")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"], page
    for change in changes:
        r = await browser.post(f"/console/endpoints/{foreign}/{change}", data={"csrf_token": csrf})
        assert r.status_code == 404, change
    assert (await api_get(web, other, f"/v1/endpoints/{foreign}"))["url"].endswith("/other")
    # a read-only session sees the page and no control, and is refused every change
    minted = await web.portal_link(org, readOnly=True)
    reader = web.client()
    await reader.get(minted["url"].removeprefix("http://tidings.test"))
    seen = await reader.get(f"/console/endpoints/{ep}")
    assert seen.status_code == 200 and "/secret" not in seen.text and "/edit" not in seen.text
    for change in changes:
        r = await reader.post(
            f"/console/endpoints/{ep}/{change}", data={"csrf_token": csrf_of(seen.text)}
        )
        assert r.status_code == 403 and "read_only" in r.text, change
